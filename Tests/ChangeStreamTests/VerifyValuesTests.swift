import Testing
@testable import ChangeStream

@Suite("verify: values by meaning, keys in MongoDB's order")
struct VerifyValuesTests {
    @Test("numbers compare by value: numeric exactly, across BSON's number types")
    func numbers() {
        #expect(VerifyValues.same(.decimal("1500"), .decimal("1.5E+3")))
        #expect(VerifyValues.same(.decimal("0.0150"), .decimal("1.5E-2")))
        #expect(VerifyValues.same(.decimal("12.50"), .decimal("12.5")))
        #expect(VerifyValues.same(.int32(7), .int64(7)))
        #expect(VerifyValues.same(.int64(7), .decimal("7.00")))
        #expect(VerifyValues.same(.decimal("-0"), .decimal("0.000")))
        #expect(VerifyValues.same(.decimal("NaN"), .double(.nan)))
        #expect(!VerifyValues.same(.decimal("12.51"), .decimal("12.5")))
        #expect(!VerifyValues.same(.decimal("10000000000000000000000000000000001"), .decimal("1E+34")))
        #expect(!VerifyValues.same(.int64(1), .string("1")))
    }

    @Test("json by content: key order does not matter, numbers by value, $-keys stay keys")
    func json() {
        let stored = EventValue.document(EventDocument([("b", .array([.int32(1), .double(2.5)])), ("a", .string("x"))]))
        #expect(VerifyValues.same(.json(#"{"a": "x", "b": [1, 2.5]}"#), stored))
        #expect(!VerifyValues.same(.json(#"{"a": "x", "b": [2.5, 1]}"#), stored))
        #expect(VerifyValues.same(.json(#"{"$date": 1}"#), .document(EventDocument([("$date", .int32(1))]))))
        #expect(!VerifyValues.same(.json(#"{"$date": 1}"#), .date(1)))
    }

    @Test("a row's field missing from its document, or a document's field the row lacks, is a difference")
    func fields() {
        let row = EventDocument([("id", .int32(1)), ("v", .string("a"))])
        let document = EventDocument([("_id", .int32(1)), ("id", .int32(1)), ("currentVersion", .int64(3)), ("w", .null)])
        #expect(VerifyValues.differingFields(row: row, document: document) == ["v", "w"])
    }

    @Test("keys order as MongoDB sorts _id: numbers by value across types, strings by bytes, documents field by field")
    func order() {
        #expect(VerifyValues.order(.int32(2), .int64(10)) < 0)
        #expect(VerifyValues.order(.int64(3), .decimal("2.5")) > 0)
        #expect(VerifyValues.order(.string("B"), .string("a")) < 0, "byte order, as COLLATE \"C\"")
        #expect(VerifyValues.order(.string("é"), .string("z")) > 0)
        let first = EventValue.document(EventDocument([("a", .int32(1)), ("b", .string("z"))]))
        let second = EventValue.document(EventDocument([("a", .int32(2)), ("b", .string("a"))]))
        #expect(VerifyValues.order(first, second) < 0)
        #expect(VerifyValues.order(.int32(5), .string("5")) < 0, "numbers before strings")
        #expect(VerifyValues.order(.binary(subtype: 4, bytes: [1, 2]), .binary(subtype: 4, bytes: [1, 3])) < 0)
        // Exactly, beyond a double's 17 digits; negative numbers backwards; NaN first, as MongoDB sorts it.
        #expect(VerifyValues.order(.decimal("12345678901234567890"), .decimal("12345678901234567891")) < 0)
        #expect(VerifyValues.order(.decimal("99999999999999999999.5"), .decimal("100000000000000000000")) < 0)
        #expect(VerifyValues.order(.decimal("-2.5"), .decimal("-2.25")) < 0)
        #expect(VerifyValues.order(.decimal("0.001"), .int32(0)) > 0)
        #expect(VerifyValues.order(.decimal("NaN"), .decimal("-Infinity")) < 0)
        #expect(VerifyValues.order(.int64(Int64.max), .decimal("9223372036854775808")) < 0)
    }

    @Test("PostgreSQL orders each key column as MongoDB sorts its BSON value")
    func orderExpressions() {
        #expect(Verifier.orderExpression("k", typeOID: 20) == "k")
        #expect(Verifier.orderExpression("k", typeOID: 2950) == "k")
        #expect(Verifier.orderExpression("k", typeOID: 17) == "pg_catalog.length(k), k")
        #expect(Verifier.orderExpression("k", typeOID: 25) == "k::pg_catalog.text COLLATE \"C\"")
        #expect(Verifier.orderExpression("k", typeOID: 123456) == "k::pg_catalog.text COLLATE \"C\"", "an enum or citext is a string in MongoDB")
    }
}

@Suite("shapes: key state")
struct KeyTextTests {
    @Test("a key is one key whatever its number type or printing, as MongoDB matches _ids")
    func numbers() {
        #expect(EventValue.int32(100).keyText == EventValue.decimal("1.0E+2").keyText)
        #expect(EventValue.decimal("0.00000010").keyText == EventValue.decimal("1.0E-7").keyText)
        #expect(EventValue.int64(7).keyText == EventValue.double(7).keyText)
        #expect(EventValue.int32(7).keyText != EventValue.string("7").keyText)
        let composite = EventValue.document(EventDocument([("a", .int32(1)), ("b", .string("x"))]))
        #expect(composite.keyText == EventValue.document(EventDocument([("a", .int64(1)), ("b", .string("x"))])).keyText)
    }

    @Test("a position is the _id without its slot: a new slot on the same collections goes on in order")
    func positions() {
        let old = KeyedShapes.position(of: "zzz_old/0000000001A3E4E7/00000003")
        let new = KeyedShapes.position(of: "aaa_new/0000000001B00000/00000001")
        #expect(old == "0000000001A3E4E7/00000003" && new > old)
        #expect(KeyedShapes.position(of: "s/0000000001A3E4E6/s/0000000001/00000000000000000007") < new)
    }
}
