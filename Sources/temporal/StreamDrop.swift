import ArgumentParser
import ChangeStream
import Postgres

struct StreamDrop: DatabaseCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop",
        abstract: "Drop a stream's replication slot (and its publication).",
        discussion: """
            The server forgets the slot's position and frees the WAL it kept. Events \
            not yet streamed are not streamed. A slot of another plugin (test_decoding, \
            wal2json: another tool's) is refused unless --force.

            Example:
              temporal stream drop --slot app_slot --publication app_pub
            """)
    static var needsInstall: Bool { false }

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The slot to drop.")
    var slot: String

    @Option(help: "Also drop this publication.")
    var publication: String?

    @Flag(help: "Drop the slot even if another plugin's (not a stream's).")
    var force = false

    func validate() throws {
        try connection.refuseWritesIfReadOnly("stream drop")
    }

    func run(on database: Connection) throws {
        try database.pinSearchPath()
        try StreamAdmin(connection: database).drop(slot: slot, publication: publication, force: force)
        print("dropped slot \(slot)" + (publication.map { " and publication \($0)" } ?? ""))
    }
}
