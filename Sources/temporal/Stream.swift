import ArgumentParser

struct Stream: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream every change into MongoDB (or JSON lines) from a logical replication slot.",
        discussion: """
            Set up once, then run as a service:

              temporal stream setup --publication app_pub --slot app_slot public.customers public.orders
              temporal stream run --publication app_pub --slot app_slot \\
                  --mongodb 'mongodb://db1,db2/?replicaSet=rs0' --database audit

            Every row change becomes one document in changeEvents. Delivery survives \
            crashes without losing or duplicating an event: the slot's position is \
            confirmed only after MongoDB (or the file) has durably written everything \
            before it, and each event's _id is fixed by its change, so events sent again \
            after a crash are recognised and skipped.
            """,
        subcommands: [StreamSetup.self, StreamRun.self, StreamBackfill.self, StreamStatus.self, StreamDrop.self]
    )
}
