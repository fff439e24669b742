import Postgres
import TemporalKit
import TestSupport
import Testing

@Suite("instants")
struct InstantTests {
    @Test("resolveInstants reads times in the session's zone and leaves the session as it was")
    func noSideEffect() throws {
        let database = try TestDatabase()
        let db = try database.connect()
        try db.execute("SET TimeZone = 'Europe/Paris'")
        let timeTravel = TimeTravel(connection: db)
        #expect(try timeTravel.resolveInstants(["2026-01-15 10:30:00", "2026-07-01 00:00:00.5+02"])
                    == ["2026-01-15 09:30:00.000000+00", "2026-06-30 22:00:00.500000+00"])
        #expect(try db.value("SHOW TimeZone") == "Europe/Paris")
        #expect(throws: PostgresError.self) { try timeTravel.resolveInstants(["infinity"]) }
        try timeTravel.printTimesInUTC()
        #expect(try db.value("SHOW TimeZone") == "UTC")
    }
}
