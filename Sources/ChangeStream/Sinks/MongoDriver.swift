import CBSON
#if canImport(Glibc)
import Glibc
#endif

/// libmongoc, loaded when a MongoDB sink is first made, not when the program
/// starts. Debian's libmongoc initialises itself in a library constructor as
/// soon as it is loaded, creating shared-memory counters in
/// /dev/shm/mongoc-<pid>: linked into `temporal`, it did so for every command
/// (`temporal list` included), and a killed stream left its file behind for a
/// later command with the same pid to warn about. Only the functions of the
/// MongoDB sink are looked up here; libbson stays linked (it has no such
/// constructor).
struct MongoDriver {
    // The few constants of mongoc.h the sink uses (its header is not imported).
    static let serverSelectionTimeoutOption = "serverselectiontimeoutms"   // MONGOC_URI_SERVERSELECTIONTIMEOUTMS
    static let socketTimeoutOption = "sockettimeoutms"                     // MONGOC_URI_SOCKETTIMEOUTMS
    static let majority: Int32 = -3                                        // MONGOC_WRITE_CONCERN_W_MAJORITY

    let uriNewWithError: @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<bson_error_t>?) -> OpaquePointer?
    let uriDestroy: @convention(c) (OpaquePointer?) -> Void
    let uriSetOptionAsInt32: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Bool
    let uriSetAppname: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Bool
    let clientNewFromURIWithError: @convention(c) (OpaquePointer?, UnsafeMutablePointer<bson_error_t>?) -> OpaquePointer?
    let clientSetErrorAPI: @convention(c) (OpaquePointer?, Int32) -> Bool
    let clientGetCollection: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> OpaquePointer?
    let clientCommandSimple: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, OpaquePointer?, OpaquePointer?,
                                             OpaquePointer?, UnsafeMutablePointer<bson_error_t>?) -> Bool
    let clientDestroy: @convention(c) (OpaquePointer?) -> Void
    let collectionDestroy: @convention(c) (OpaquePointer?) -> Void
    let collectionCreateBulkOperationWithOpts: @convention(c) (OpaquePointer?, OpaquePointer?) -> OpaquePointer?
    let bulkOperationInsertWithOpts: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?,
                                                     UnsafeMutablePointer<bson_error_t>?) -> Bool
    let bulkOperationExecute: @convention(c) (OpaquePointer?, OpaquePointer?, UnsafeMutablePointer<bson_error_t>?) -> UInt32
    let bulkOperationDestroy: @convention(c) (OpaquePointer?) -> Void
    let writeConcernNew: @convention(c) () -> OpaquePointer?
    let writeConcernSetW: @convention(c) (OpaquePointer?, Int32) -> Void
    let writeConcernSetJournal: @convention(c) (OpaquePointer?, Bool) -> Void
    let writeConcernAppend: @convention(c) (OpaquePointer?, OpaquePointer?) -> Bool
    let writeConcernDestroy: @convention(c) (OpaquePointer?) -> Void
    // Conditioned writes of the shapes, and reads of verify and the shapes' key state.
    let bulkOperationUpdateOneWithOpts: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?,
                                                        UnsafeMutablePointer<bson_error_t>?) -> Bool
    let bulkOperationReplaceOneWithOpts: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?,
                                                         UnsafeMutablePointer<bson_error_t>?) -> Bool
    let bulkOperationUpdateManyWithOpts: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?,
                                                         UnsafeMutablePointer<bson_error_t>?) -> Bool
    let bulkOperationRemoveOneWithOpts: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?,
                                                        UnsafeMutablePointer<bson_error_t>?) -> Bool
    let bulkOperationRemoveManyWithOpts: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?,
                                                         UnsafeMutablePointer<bson_error_t>?) -> Bool
    let collectionFindWithOpts: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?) -> OpaquePointer?
    let collectionAggregate: @convention(c) (OpaquePointer?, Int32, OpaquePointer?, OpaquePointer?, OpaquePointer?) -> OpaquePointer?
    let cursorNext: @convention(c) (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>?) -> Bool
    let cursorError: @convention(c) (OpaquePointer?, UnsafeMutablePointer<bson_error_t>?) -> Bool
    let cursorDestroy: @convention(c) (OpaquePointer?) -> Void

    /// The driver, loaded once; or why it cannot be.
    static let shared: Result<MongoDriver, SinkError> = load()

    private static func load() -> Result<MongoDriver, SinkError> {
        guard let library = dlopen("libmongoc-1.0.so.0", RTLD_NOW | RTLD_GLOBAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            return .failure(SinkError("the MongoDB C driver (libmongoc) cannot be loaded: \(reason)",
                                      retryable: false))
        }
        var missing: [String] = []
        func symbol<T>(_ name: String) -> T {
            guard let address = dlsym(library, name) else {
                missing.append(name)
                return unsafeBitCast(UnsafeRawPointer(bitPattern: 1)!, to: T.self)   // never called: the load fails below
            }
            return unsafeBitCast(address, to: T.self)
        }
        let driver = MongoDriver(
            uriNewWithError: symbol("mongoc_uri_new_with_error"),
            uriDestroy: symbol("mongoc_uri_destroy"),
            uriSetOptionAsInt32: symbol("mongoc_uri_set_option_as_int32"),
            uriSetAppname: symbol("mongoc_uri_set_appname"),
            clientNewFromURIWithError: symbol("mongoc_client_new_from_uri_with_error"),
            clientSetErrorAPI: symbol("mongoc_client_set_error_api"),
            clientGetCollection: symbol("mongoc_client_get_collection"),
            clientCommandSimple: symbol("mongoc_client_command_simple"),
            clientDestroy: symbol("mongoc_client_destroy"),
            collectionDestroy: symbol("mongoc_collection_destroy"),
            collectionCreateBulkOperationWithOpts: symbol("mongoc_collection_create_bulk_operation_with_opts"),
            bulkOperationInsertWithOpts: symbol("mongoc_bulk_operation_insert_with_opts"),
            bulkOperationExecute: symbol("mongoc_bulk_operation_execute"),
            bulkOperationDestroy: symbol("mongoc_bulk_operation_destroy"),
            writeConcernNew: symbol("mongoc_write_concern_new"),
            writeConcernSetW: symbol("mongoc_write_concern_set_w"),
            writeConcernSetJournal: symbol("mongoc_write_concern_set_journal"),
            writeConcernAppend: symbol("mongoc_write_concern_append"),
            writeConcernDestroy: symbol("mongoc_write_concern_destroy"),
            bulkOperationUpdateOneWithOpts: symbol("mongoc_bulk_operation_update_one_with_opts"),
            bulkOperationReplaceOneWithOpts: symbol("mongoc_bulk_operation_replace_one_with_opts"),
            bulkOperationUpdateManyWithOpts: symbol("mongoc_bulk_operation_update_many_with_opts"),
            bulkOperationRemoveOneWithOpts: symbol("mongoc_bulk_operation_remove_one_with_opts"),
            bulkOperationRemoveManyWithOpts: symbol("mongoc_bulk_operation_remove_many_with_opts"),
            collectionFindWithOpts: symbol("mongoc_collection_find_with_opts"),
            collectionAggregate: symbol("mongoc_collection_aggregate"),
            cursorNext: symbol("mongoc_cursor_next"),
            cursorError: symbol("mongoc_cursor_error"),
            cursorDestroy: symbol("mongoc_cursor_destroy"))
        guard missing.isEmpty else {
            return .failure(SinkError("the MongoDB C driver (libmongoc) lacks \(missing.joined(separator: ", ")): it is too old",
                                      retryable: false))
        }
        // The constructor initialised it already; mongoc_init is idempotent and
        // makes sure where automatic initialisation was built out.
        if let initialize = dlsym(library, "mongoc_init") {
            unsafeBitCast(initialize, to: (@convention(c) () -> Void).self)()
        }
        return .success(driver)
    }
}
