import ArgumentParser
import Postgres
import TemporalKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Disable: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop keeping the history of a table.",
        discussion: """
            Drops the capture triggers. The history table stays, so everything recorded \
            so far can still be read; enabling again resumes into it (time travel then \
            starts again at the new enable, since changes made while versioning was off \
            are not known).

            With --drop-history the history table is dropped too. That cannot be undone: \
            on a terminal temporal asks first; in a script pass --yes.

            Examples:
              temporal disable public.customers
              temporal disable public.customers --drop-history --yes
            """)

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The table (a dropped table's kept history is found by its last name).")
    var table: String

    @Flag(help: "Also drop the history table and everything it holds.")
    var dropHistory = false

    @Flag(help: "Do not ask before dropping history.")
    var yes = false

    func validate() throws {
        try connection.refuseWritesIfReadOnly("disable")
        if dropHistory && !yes && isatty(STDIN_FILENO) == 0 {
            throw ValidationError("--drop-history deletes the history for good; add --yes to confirm when not on a terminal.")
        }
    }

    func run(on database: Connection) throws {
        let name = try TableResolver.resolve(table, on: database, includingDropped: true)
        if dropHistory && !yes {
            guard Confirmation.ask("Drop the history of \(name) for good?") else {
                printError("nothing changed")
                throw ExitCode(1)
            }
        }
        print(try Versioning(connection: database).disable(name, dropHistory: dropHistory))
    }
}

enum Confirmation {
    /// Asks a yes/no question on the terminal; anything but y or yes is no.
    static func ask(_ question: String) -> Bool {
        writeStandardError("\(question) [y/N] ")
        guard let answer = readLine() else { return false }
        return ["y", "yes"].contains(answer.lowercased())
    }
}
