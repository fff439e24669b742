import ArgumentParser
import Postgres
import TemporalKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Revert: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put a table back as it was, or undo one changeset or transaction.",
        discussion: """
            Always look first:
              temporal revert public.customers --to '2026-01-15 09:00+00' --dry-run
            lists every row the revert would delete, update or insert, with the row now \
            and the row after, and changes nothing. Then:
              temporal revert public.customers --to '2026-01-15 09:00+00'
            On a terminal it shows the same preview and asks before going on; in a script \
            pass --yes. The revert is one transaction: it locks the table against writers \
            (readers go on), applies the fewest DELETE, UPDATE and INSERT statements, so \
            your triggers and constraints act as for any write (a foreign key it would \
            break stops it, and nothing changes), and is itself recorded under the \
            changeset revert:..., so it can be undone.

            --changeset and --tx undo only what one changeset or transaction did, in every \
            versioned table it touched (or only in TABLE). If another transaction changed \
            one of those rows later, nothing is reverted and the rows are listed.
              temporal revert --changeset cs-789 --dry-run
              temporal revert --tx 123456 --yes

            A revert across a schema change it cannot express (a column dropped since, \
            whose old values it would need) is refused with an explanation.
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The table (required with --to).")
    var table: String?

    @Option(help: ArgumentHelp("Put the table back as it was at this instant.", valueName: "timestamp"))
    var to: String?

    @Option(help: "Undo the changes recorded under this changeset (temporal.changeset_id).")
    var changeset: String?

    @Option(name: .customLong("tx"), parsing: .unconditional, help: "Undo the changes of this transaction (temporal_tx_id).")
    var transaction: Int64?

    @Flag(help: "Show what the revert would do and change nothing.")
    var dryRun = false

    @Flag(help: "Do not ask before reverting.")
    var yes = false

    func validate() throws {
        let targets = [to != nil, changeset != nil, transaction != nil].filter { $0 }.count
        guard targets == 1 else {
            throw ValidationError("give exactly one of --to TIMESTAMP, --changeset ID or --tx ID.")
        }
        if let transaction, transaction < 1 {
            throw ValidationError("--tx takes a transaction id (temporal_tx_id, 1 or more), not \(transaction).")
        }
        if to != nil && table == nil {
            throw ValidationError("--to needs the table: temporal revert public.customers --to '2026-01-15 09:00+00'")
        }
        if !dryRun {
            try connection.refuseWritesIfReadOnly("revert")
            if !yes && isatty(STDIN_FILENO) == 0 {
                throw ValidationError("a revert changes data: preview it with --dry-run, then add --yes to run it from a script.")
            }
        }
    }

    func run(on database: Connection) throws {
        let name = try table.map { try TableResolver.resolve($0, on: database, includingDropped: true) }
        let timeTravel = TimeTravel(connection: database)
        let instants = try timeTravel.resolveInstants(to.map { [$0] } ?? [])
        try timeTravel.printTimesInUTC()
        let target: TimeTravel.RevertTarget
        if let name, let instant = instants.first {
            target = .instant(name, instant)
        } else if let changeset {
            target = .changeset(changeset, name)
        } else {
            target = .transaction(transaction!, name)
        }
        let renderer = Renderer(format: output.format)

        if dryRun {
            renderer.printRevert(try timeTravel.planRevert(target))
            return
        }
        var preview: RevertPlan?
        if !yes {
            let plan = try timeTravel.planRevert(target)
            renderer.printRevert(plan)
            guard !plan.changes.isEmpty else { return }
            guard Confirmation.ask("Apply this revert?") else {
                printError("nothing changed")
                throw ExitCode(1)
            }
            preview = plan
        }
        // The plan carried out must be the one previewed (the table may have changed meanwhile).
        let done = try timeTravel.applyRevert(target, expecting: preview?.planID)
        renderer.printRevert(done)
        if let label = done.changeset {
            printError("recorded under changeset \(label); to undo it: temporal revert --changeset '\(label)'")
        }
    }
}
