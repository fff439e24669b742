# Sourced by the bench/ commands: installs what they need, builds the release
# `temporal`, and starts the throwaway servers that are not already running
# (stopped again on exit). `source bench/prepare.sh mongo` starts MongoDB too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps
swift build -c release --product temporal >&2
bench_started=()
bench_stop() {
    local server
    for server in "${bench_started[@]}"; do scripts/"$server"-stop; done
}
trap bench_stop EXIT
for server in pg "$@"; do
    if ! { [ -f ".run/$server.pid" ] && kill -0 "$(cat ".run/$server.pid")" 2>/dev/null; }; then
        scripts/"$server"-start
        bench_started=("$server" "${bench_started[@]}")
    fi
    source ".run/$server.env"
done
