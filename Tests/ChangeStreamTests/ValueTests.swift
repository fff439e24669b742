import Postgres
import Testing
@testable import ChangeStream

@Suite("values keep their meaning")
struct ValueTests {
    let decoder = ValueDecoder(types: TypeCatalog())

    @Test("numbers: int8 as Int64, numeric as Decimal128 unless it has more than 34 digits, NaN and infinities kept")
    func numbers() throws {
        #expect(try decoder.decode("9007199254740993", typeOID: 20).value == .int64(9_007_199_254_740_993))
        #expect(try decoder.decode("-32768", typeOID: 21).value == .int32(-32768))
        #expect(try decoder.decode("12.50", typeOID: 1700).value == .decimal("12.50"))
        #expect(try decoder.decode("NaN", typeOID: 1700).value == .decimal("NaN"))
        #expect(try decoder.decode("-Infinity", typeOID: 1700).value == .decimal("-Infinity"))
        let long = "1234567890123456789012345678901234.5"   // 35 digits
        #expect(try decoder.decode(long, typeOID: 1700).value == .string(long))
        #expect(try decoder.decode("0.000000000000000000000000000000000000012", typeOID: 1700).value
                == .decimal("0.000000000000000000000000000000000000012"))
        #expect(try decoder.decode("Infinity", typeOID: 701).value == .double(.infinity))
        if case let .double(nan) = try decoder.decode("NaN", typeOID: 701).value { #expect(nan.isNaN) } else { Issue.record("not a double") }
        #expect(EventValue.double(.nan) == .double(.nan))
    }

    @Test("times: dates in milliseconds, the exact text kept when microseconds would be lost")
    func times() throws {
        let exact = try decoder.decode("2026-01-15 10:30:00.123+00", typeOID: 1184)
        #expect(exact.value == .date(1_768_473_000_123) && exact.exactText == nil)
        let lossy = try decoder.decode("2026-01-15 10:30:00.123456+00", typeOID: 1184)
        #expect(lossy.value == .date(1_768_473_000_123) && lossy.exactText == "2026-01-15 10:30:00.123456+00")
        #expect(try decoder.decode("2026-01-15 12:30:00+02", typeOID: 1184).value == .date(1_768_473_000_000))
        #expect(try decoder.decode("2026-01-15 10:30:00+05:30", typeOID: 1184).value == .date(1_768_473_000_000 - 19_800_000))
        #expect(try decoder.decode("2026-01-15", typeOID: 1082).value == .date(1_768_435_200_000))
        #expect(try decoder.decode("infinity", typeOID: 1184).value == .string("infinity"))
        #expect(try decoder.decode("0044-03-15 00:00:00+00 BC", typeOID: 1184).value == .string("0044-03-15 00:00:00+00 BC"))
    }

    @Test("bytes, uuids, json and arrays (nested, with NULLs and quotes)")
    func structured() throws {
        #expect(try decoder.decode("\\xdeadbeef", typeOID: 17).value == .binary(subtype: 0, bytes: [0xDE, 0xAD, 0xBE, 0xEF]))
        #expect(try decoder.decode("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", typeOID: 2950).value
                == .binary(subtype: 4, bytes: [0xA0, 0xEE, 0xBC, 0x99, 0x9C, 0x0B, 0x4E, 0xF8, 0xBB, 0x6D, 0x6B, 0xB9, 0xBD, 0x38, 0x0A, 0x11]))
        #expect(try decoder.decode(#"{"a": [1, 2]}"#, typeOID: 3802).value == .json(#"{"a": [1, 2]}"#))
        #expect(try decoder.decode(#"{{1,2},{3,NULL}}"#, typeOID: 1007).value
                == .array([.array([.int32(1), .int32(2)]), .array([.int32(3), .null])]))
        #expect(try decoder.decode(#"{"a b","c\"d",NULL,"NULL"}"#, typeOID: 1009).value
                == .array([.string("a b"), .string("c\"d"), .null, .string("NULL")]))
        let times = try decoder.decode(#"{"2026-01-15 10:30:00.000001+00"}"#, typeOID: 1185)
        #expect(times.exactText == #"{"2026-01-15 10:30:00.000001+00"}"#)
        #expect(try decoder.decode("[0:1]={7,8}", typeOID: 1007).value == .array([.int32(7), .int32(8)]))
        #expect(try decoder.decode("(1,2)", typeOID: 600).value == .string("(1,2)"))
    }

    @Test("Extended JSON: dates, Decimal128, binary, doubles and escapes")
    func extendedJSON() throws {
        let document = EventDocument([
            ("d", .date(1_768_473_000_123)), ("n", .decimal("12.50")), ("b", .binary(subtype: 4, bytes: [1, 2, 3])),
            ("x", .double(.nan)), ("y", .double(2)), ("s", .string("a\"b\\c\n\u{1}")), ("j", .json(#"{"k": [1]}"#)),
            ("a", .array([.int64(1), .null])), ("o", .document(EventDocument([("t", .bool(true))]))),
        ])
        #expect(ExtendedJSON.encode(document) == #"""
            {"d": {"$date": "2026-01-15T10:30:00.123Z"}, "n": {"$numberDecimal": "12.50"}, "b": {"$binary": {"base64": "AQID", "subType": "04"}}, "x": {"$numberDouble": "NaN"}, "y": 2.0, "s": "a\"b\\c\n\u0001", "j": {"k": [1]}, "a": [1, null], "o": {"t": true}}
            """#)
        #expect(ExtendedJSON.encode(EventDocument([("d", .date(-1))])) == #"{"d": {"$date": {"$numberLong": "-1"}}}"#)
        #expect(ExtendedJSON.base64([0xFF]) == "/w==" && ExtendedJSON.base64([0xFF, 0xEE]) == "/+4=")
    }

    @Test("event ids sort in commit order")
    func ids() throws {
        let first = ChangeEvent.id(slot: "s", commitLSN: LSN("0/FFFFFFFF")!, position: 12)
        let second = ChangeEvent.id(slot: "s", commitLSN: LSN("1/0")!, position: 1)
        #expect(first == "s/00000000FFFFFFFF/00000012")
        #expect(first < second)
    }
}

