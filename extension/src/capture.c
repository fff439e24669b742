/*
 * capture.c: the C capture path of pg-temporal.
 *
 * temporal_versioning._capture_c() is the statement-level AFTER INSERT,
 * UPDATE and DELETE trigger function of versioned tables when the extension's
 * library is installed. It writes exactly the history rows the table's
 * generated PL/pgSQL capture function (sql/10_history.sql,
 * build_capture_function) writes, and the transactions row, but without the
 * executor: it reads the transition tables, forms the history tuples and
 * inserts them into the history heap and its indexes itself (a statement's
 * rows in batches of table_multi_insert, as COPY does), evaluating the
 * history's NOT NULL and CHECK constraints as the history's owner, as the
 * PL/pgSQL function's INSERT does. The PL/pgSQL
 * function stays the reference, and the fallback: whatever this file does not
 * handle is handed to it with the same trigger data, so the result is the
 * same either way. It is handed:
 *
 *   - an UPDATE whose old and new rows do not pair up, in order, with equal
 *     keys (an update of a key: the history records a delete and an insert,
 *     which the PL/pgSQL function's join on the key works out);
 *   - a history table it cannot write like INSERT would: with triggers, row
 *     security, defaults other than temporal_id's (its identity, or for a
 *     history partitioned by time its sequence) and temporal_at's now(),
 *     NOT NULL on a column it leaves NULL, or columns whose type is not the
 *     source's;
 *   - a statement whose rows a history partitioned by time would route to
 *     its DEFAULT partition (no partition for its period yet), or to a
 *     partition with triggers or partitioned further;
 *   - TRUNCATE (its trigger calls the PL/pgSQL function directly anyway).
 *
 * A history partitioned by time (range on temporal_at, the transaction's
 * start) gets all the rows of a transaction in one partition, so the
 * partition is found once per statement, with the lookup the executor's
 * routing makes (get_partition_for_tuple), and the rows are written there.
 * A partition whose columns sit at other places than the history's (one made
 * after a history column was dropped) gets them converted by name, as routed
 * rows are, and its own CHECK constraints.
 *
 * temporal_versioning._emit_change_context_c() is the BEFORE statement
 * trigger of the same tables: the PL/pgSQL _emit_change_context() without
 * the PL/pgSQL call on every statement (it only reads three settings when no
 * context is set, which is nearly always).
 *
 * What is known of each table (its history, the history column of every
 * column, the key, the identity sequence, the fallback) is cached per backend
 * and dropped on any invalidation of the table, its history or functions.
 * The transactions row is written once per transaction per backend; a
 * subtransaction that aborts after writing it makes the next capture write it
 * again, as the PL/pgSQL path's ON CONFLICT DO NOTHING would.
 */
#include "postgres.h"

#include "access/brin.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tupconvert.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_sequence.h"
#include "common/int.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/readfuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_func.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "rewrite/rewriteHandler.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(temporal_capture);
PG_FUNCTION_INFO_V1(temporal_capture_library_version);
PG_FUNCTION_INFO_V1(temporal_capture_statements);
PG_FUNCTION_INFO_V1(temporal_emit_change_context);

#define TEMPORAL_SCHEMA "temporal_versioning"

/* What is known of one relation that fires the capture triggers. */
typedef struct CaptureTarget
{
	Oid			relid;			/* hash key: the relation the trigger fires on */
	bool		valid;			/* false once invalidated: rebuilt on next use */
	MemoryContext context;		/* holds everything below */
	bool		use_c;			/* false: hand every capture to the fallback */
	Oid			history_relid;
	bool		partitioned;	/* the history is partitioned by time */
	Oid			leaf_relid;		/* its partition last written, ... */
	char		leaf_layout;	/* ... and how rows fit it: LEAF_* */
	Oid			sequence_relid; /* temporal_id's identity (or default's)
								 * sequence */
	AttrNumber	id_attno;		/* history attnos of temporal_id, ... */
	AttrNumber	tx_attno;
	AttrNumber	op_attno;
	AttrNumber	at_attno;		/* temporal_at, partitioned only (else 0) */
	int			natts;			/* attributes of the firing relation */
	AttrNumber *history_attno;	/* per source attribute: its history column, 0
								 * for a dropped one */
	bool	   *is_key;
	bool	   *is_bpchar;		/* compared without trailing blanks */
	int			nkeys;
	AttrNumber *key_attno;		/* source attnos of the key columns */
	Oid			fallback_oid;	/* the table's PL/pgSQL capture function */
	FmgrInfo	fallback;
	int			nchecks;		/* CHECK constraints of the history */
	Expr	  **check_exprs;	/* each one planned, NULL for one not
								 * enforced; NULL: none */
	bool	   *check_op_only;	/* each one reads temporal_operation only, with
								 * immutable functions */
} CaptureTarget;

/* How the rows formed for a partitioned history fit one of its partitions. */
#define LEAF_UNUSABLE 'n'		/* they go to the PL/pgSQL function */
#define LEAF_SAME 's'			/* as they are, with the history's checks */
#define LEAF_CONVERTED 'c'		/* converted by column name, its own checks */

static HTAB *targets = NULL;

/* Catalog oids, looked up once per backend (and after invalidations). */
static Oid	schema_oid = InvalidOid;
static Oid	transactions_relid = InvalidOid;

/* The transactions row of the current transaction, once written here. */
static bool tx_row_written = false;
static FullTransactionId tx_row_fxid;
static SubTransactionId tx_row_subxid;

static bool callbacks_registered = false;

/*
 * Statements this backend captured in C, and handed to the PL/pgSQL
 * function: what _capture_c_statements() reports, so that tests (and a
 * curious DBA) can see which path a table's writes take.
 */
static int64 statements_in_c = 0;
static int64 statements_handed_over = 0;

static void
invalidate_relation(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	CaptureTarget *target;

	if (relid == InvalidOid || relid == transactions_relid)
	{
		schema_oid = InvalidOid;
		transactions_relid = InvalidOid;
	}
	if (targets == NULL)
		return;
	hash_seq_init(&status, targets);
	while ((target = (CaptureTarget *) hash_seq_search(&status)) != NULL)
	{
		if (relid == InvalidOid || target->relid == relid || target->history_relid == relid ||
			(OidIsValid(target->leaf_relid) && target->leaf_relid == relid))
			target->valid = false;
	}
}

static void
invalidate_all(Datum arg, int cacheid, uint32 hashvalue)
{
	invalidate_relation(arg, InvalidOid);
}

static void
on_xact(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			tx_row_written = false;
			break;
		default:
			break;
	}
}

static void
on_subxact(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg)
{
	if (!tx_row_written || tx_row_subxid != mySubid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		tx_row_written = false;
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		tx_row_subxid = parentSubid;	/* the row now lives in the parent */
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	CacheRegisterRelcacheCallback(invalidate_relation, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, invalidate_all, (Datum) 0);
	RegisterXactCallback(on_xact, NULL);
	RegisterSubXactCallback(on_subxact, NULL);
	callbacks_registered = true;
}

/*
 * The oids of pg-temporal's schema and transactions table, into the caller's
 * variables: the cached copies are reset by any invalidation (a sinval queue
 * reset, which other backends' DDL can cause at any catalog access, resets
 * everything), so callers use what this returned, never the statics.
 */
static void
lookup_catalog(Oid *schema, Oid *transactions)
{
	if (!OidIsValid(transactions_relid) || !OidIsValid(schema_oid))
	{
		Oid			found_schema = get_namespace_oid(TEMPORAL_SCHEMA, false);
		Oid			found_transactions = get_relname_relid("transactions", found_schema);

		if (!OidIsValid(found_transactions))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation \"%s.transactions\" does not exist", TEMPORAL_SCHEMA),
					 errhint("Install pg-temporal again: temporal install")));
		schema_oid = found_schema;
		transactions_relid = found_transactions;
		if (schema)
			*schema = found_schema;
		if (transactions)
			*transactions = found_transactions;
		return;
	}
	if (schema)
		*schema = schema_oid;
	if (transactions)
		*transactions = transactions_relid;
}

/* The versioned_tables row of the relation, read as pg-temporal's owner. */
typedef struct VersionedRow
{
	bool		found;
	char	   *history_table;
	List	   *key_columns;	/* of char * */
	bool		partitioned_history;
	Oid			fallback_oid;
} VersionedRow;

static VersionedRow
read_versioned_row(Oid relid, MemoryContext into)
{
	VersionedRow row = {0};
	Oid			transactions;
	Oid			owner;
	Oid			saved_user;
	int			saved_context;
	int			nest_level;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];

	lookup_catalog(NULL, &transactions);
	{
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(transactions));

		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for relation %u", transactions);
		owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
		ReleaseSysCache(tuple);
	}

	/*
	 * As the owner of pg-temporal's catalog (the writer may not read it),
	 * with a search_path no writer chose: the query's operators are
	 * pg_catalog's.
	 */
	GetUserIdAndSecContext(&saved_user, &saved_context);
	SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		int			ret;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		args[0] = ObjectIdGetDatum(relid);
		ret = SPI_execute_with_args(
									"SELECT v.history_table::text, v.key_columns::text[], "
									"       coalesce(v.options ? 'partition_history', false), "
									"       to_regprocedure(format('temporal_versioning.%I()', "
									"           temporal_versioning._capture_function_name(v.history_table)))::oid "
									"FROM temporal_versioning.versioned_tables v "
									"WHERE v.enabled AND v.table_oid = coalesce(pg_partition_root($1), $1::regclass)",
									1, argtypes, args, NULL, true, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "reading temporal_versioning.versioned_tables failed: %s", SPI_result_code_string(ret));
		if (SPI_processed == 1)
		{
			HeapTuple	tuple = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		keys;
			MemoryContext old = MemoryContextSwitchTo(into);

			row.found = true;
			row.history_table = SPI_getvalue(tuple, desc, 1);
			keys = SPI_getbinval(tuple, desc, 2, &isnull);
			if (!isnull)
			{
				Datum	   *elements;
				bool	   *nulls;
				int			count;

				deconstruct_array(DatumGetArrayTypeP(keys), TEXTOID, -1, false, TYPALIGN_INT,
								  &elements, &nulls, &count);
				for (int i = 0; i < count; i++)
					if (!nulls[i])
						row.key_columns = lappend(row.key_columns, TextDatumGetCString(elements[i]));
			}
			row.partitioned_history = DatumGetBool(SPI_getbinval(tuple, desc, 3, &isnull));
			{
				Datum		fn = SPI_getbinval(tuple, desc, 4, &isnull);

				row.fallback_oid = isnull ? InvalidOid : DatumGetObjectId(fn);
			}
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		AtEOXact_GUC(true, nest_level);
		SetUserIdAndSecContext(saved_user, saved_context);
	}
	PG_END_TRY();
	return row;
}

/* The type a history column of this source column has: a domain's base. */
static bool
history_type_matches(Form_pg_attribute source, Form_pg_attribute history)
{
	int32		typmod = source->atttypmod;
	Oid			base = getBaseTypeAndTypmod(source->atttypid, &typmod);

	if (history->atttypid != base)
		return false;
	return history->atttypmod == -1 || history->atttypmod == typmod;
}

/* Whether this file can write the history like INSERT would. */
static bool
history_is_plain(Relation history, bool partitioned)
{
	if (history->rd_rel->relkind != (partitioned ? RELKIND_PARTITIONED_TABLE : RELKIND_RELATION))
		return false;
	if (history->trigdesc != NULL || history->rd_rel->relrowsecurity)
		return false;
	return true;
}

/*
 * The sequence of a column whose default is exactly nextval('seq'::regclass)
 * (a partitioned history's temporal_id), or InvalidOid.
 */
static Oid
default_sequence(Relation history, AttrNumber attno)
{
	Node	   *expr = build_column_default(history, attno);
	FuncExpr   *call;
	Const	   *arg;

	if (expr == NULL || !IsA(expr, FuncExpr))
		return InvalidOid;
	call = (FuncExpr *) expr;
	if (call->funcid != F_NEXTVAL || list_length(call->args) != 1 || !IsA(linitial(call->args), Const))
		return InvalidOid;
	arg = (Const *) linitial(call->args);
	if (arg->consttype != REGCLASSOID || arg->constisnull)
		return InvalidOid;
	return DatumGetObjectId(arg->constvalue);
}

/* Whether a column's default is exactly now() (a partitioned history's temporal_at). */
static bool
default_is_now(Relation history, AttrNumber attno)
{
	Node	   *expr = build_column_default(history, attno);

	return expr != NULL && IsA(expr, FuncExpr) && ((FuncExpr *) expr)->funcid == F_NOW &&
		((FuncExpr *) expr)->args == NIL;
}

/*
 * The history's CHECK constraints, planned once into the target's context
 * (every one, NOT VALID too; on PostgreSQL 18, not the NOT ENFORCED ones).
 * Their ExprStates are built per statement, in its EState (evaluation may
 * keep things in the query's memory), by writer_open.
 */
static void
prepare_checks(CaptureTarget *target, Relation history)
{
	TupleConstr *constr = RelationGetDescr(history)->constr;
	MemoryContext old;

	target->check_exprs = NULL;
	target->nchecks = 0;
	if (constr == NULL || constr->num_check == 0)
		return;
	old = MemoryContextSwitchTo(target->context);
	target->nchecks = constr->num_check;
	target->check_exprs = palloc0(sizeof(Expr *) * constr->num_check);
	target->check_op_only = palloc0(sizeof(bool) * constr->num_check);
	for (int i = 0; i < constr->num_check; i++)
	{
		ConstrCheck *check = &constr->check[i];
		Node	   *expr;
		Bitmapset  *attnos = NULL;

#if PG_VERSION_NUM >= 180000
		if (!check->ccenforced)
			continue;
#endif
		expr = stringToNode(check->ccbin);
		pull_varattnos(expr, 1, &attnos);
		target->check_op_only[i] =
			bms_equal(attnos, bms_make_singleton(target->op_attno - FirstLowInvalidHeapAttributeNumber)) &&
			!contain_mutable_functions(expr);
		target->check_exprs[i] = expression_planner((Expr *) list_make1(expr));
	}
	MemoryContextSwitchTo(old);
}

static void
build_target(CaptureTarget *target, Relation source)
{
	VersionedRow row;
	Oid			schema;
	Relation	history;
	TupleDesc	source_desc = RelationGetDescr(source);
	TupleDesc	history_desc;
	bool	   *history_used;
	ListCell   *lc;
	int			k;

	if (target->context != NULL)
		MemoryContextDelete(target->context);
	target->context = AllocSetContextCreate(CacheMemoryContext, "temporal capture target",
											ALLOCSET_SMALL_SIZES);
	target->use_c = false;
	target->check_exprs = NULL;
	target->nchecks = 0;
	target->history_relid = InvalidOid;
	target->partitioned = false;
	target->leaf_relid = InvalidOid;
	target->leaf_layout = LEAF_UNUSABLE;
	target->at_attno = InvalidAttrNumber;
	target->fallback_oid = InvalidOid;
	target->fallback.fn_oid = InvalidOid;

	lookup_catalog(&schema, NULL);
	row = read_versioned_row(target->relid, target->context);
	if (!row.found)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not versioned", RelationGetRelationName(source)),
				 errdetail("The trigger calling temporal_versioning._capture_c() fired on a table pg-temporal does not version."),
				 errhint("Turn versioning on (temporal enable), or drop the trigger.")));
	if (!OidIsValid(row.fallback_oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the capture function of \"%s\" is missing", RelationGetRelationName(source)),
				 errhint("Install pg-temporal again: temporal install")));
	target->fallback_oid = row.fallback_oid;
	fmgr_info_cxt(row.fallback_oid, &target->fallback, target->context);

	target->history_relid = get_relname_relid(row.history_table, schema);
	if (!OidIsValid(target->history_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", TEMPORAL_SCHEMA, row.history_table)));
	target->partitioned = row.partitioned_history;

	history = table_open(target->history_relid, AccessShareLock);
	history_desc = RelationGetDescr(history);
	if (!history_is_plain(history, target->partitioned))
	{
		table_close(history, AccessShareLock);
		return;
	}

	target->natts = source_desc->natts;
	target->history_attno = MemoryContextAllocZero(target->context, sizeof(AttrNumber) * source_desc->natts);
	target->is_key = MemoryContextAllocZero(target->context, sizeof(bool) * source_desc->natts);
	target->is_bpchar = MemoryContextAllocZero(target->context, sizeof(bool) * source_desc->natts);
	target->nkeys = list_length(row.key_columns);
	target->key_attno = MemoryContextAllocZero(target->context, sizeof(AttrNumber) * Max(target->nkeys, 1));
	history_used = palloc0(sizeof(bool) * (history_desc->natts + 1));

	target->id_attno = get_attnum(target->history_relid, "temporal_id");
	target->tx_attno = get_attnum(target->history_relid, "temporal_tx_id");
	target->op_attno = get_attnum(target->history_relid, "temporal_operation");
	if (target->id_attno == InvalidAttrNumber || target->tx_attno == InvalidAttrNumber ||
		target->op_attno == InvalidAttrNumber)
		goto fallback;
	if (target->partitioned)
	{
		/* Range-partitioned on temporal_at alone, which is now(). */
		PartitionKey key = RelationGetPartitionKey(history);

		target->at_attno = get_attnum(target->history_relid, "temporal_at");
		if (target->at_attno == InvalidAttrNumber || !default_is_now(history, target->at_attno))
			goto fallback;
		if (key == NULL || key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
			key->partattrs[0] != target->at_attno)
			goto fallback;
		target->sequence_relid = default_sequence(history, target->id_attno);
		history_used[target->at_attno] = true;
	}
	else
	{
		if (TupleDescAttr(history_desc, target->id_attno - 1)->attidentity == '\0')
			goto fallback;
#if PG_VERSION_NUM >= 170000
		target->sequence_relid = getIdentitySequence(history, target->id_attno, true);
#else
		target->sequence_relid = getIdentitySequence(target->history_relid, target->id_attno, true);
#endif
	}
	if (!OidIsValid(target->sequence_relid))
		goto fallback;
	history_used[target->id_attno] = history_used[target->tx_attno] = history_used[target->op_attno] = true;

	for (int i = 0; i < source_desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(source_desc, i);
		AttrNumber	attno;

		if (attr->attisdropped)
			continue;
		attno = get_attnum(target->history_relid, NameStr(attr->attname));
		if (attno <= 0 || !history_type_matches(attr, TupleDescAttr(history_desc, attno - 1)))
			goto fallback;
		target->history_attno[i] = attno;
		target->is_bpchar[i] = getBaseType(attr->atttypid) == BPCHAROID;
		history_used[attno] = true;
	}
	/* Every other history column is NULL in what INSERT writes, too. */
	for (int i = 0; i < history_desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(history_desc, i);

		if (attr->attisdropped || history_used[i + 1])
			continue;
		if (attr->atthasdef || attr->attgenerated != '\0' || attr->attidentity != '\0' || attr->attnotnull)
			goto fallback;
	}
	k = 0;
	foreach(lc, row.key_columns)
	{
		AttrNumber	attno = get_attnum(target->relid, (char *) lfirst(lc));

		if (attno <= 0 || target->history_attno[attno - 1] == 0)
			goto fallback;
		target->key_attno[k++] = attno;
		target->is_key[attno - 1] = true;
	}
	if (target->nkeys == 0)
		goto fallback;
	/*
	 * An INSERT's history row has the key alone: INSERT would fill another
	 * column from its default (identity, generated), where this file writes
	 * NULL.
	 */
	for (int i = 0; i < source_desc->natts; i++)
	{
		Form_pg_attribute attr;

		if (target->history_attno[i] == 0 || target->is_key[i])
			continue;
		attr = TupleDescAttr(history_desc, target->history_attno[i] - 1);
		if (attr->atthasdef || attr->attgenerated != '\0' || attr->attidentity != '\0')
			goto fallback;
	}
	prepare_checks(target, history);
	target->use_c = true;

fallback:
	pfree(history_used);
	table_close(history, AccessShareLock);
}

static CaptureTarget *
get_target(Relation source)
{
	Oid			relid = RelationGetRelid(source);
	CaptureTarget *target;
	bool		found;

	register_callbacks();
	if (targets == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CaptureTarget);
		ctl.hcxt = CacheMemoryContext;
		targets = hash_create("temporal capture targets", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	lookup_catalog(NULL, NULL);
	target = hash_search(targets, &relid, HASH_ENTER, &found);
	if (!found)
	{
		target->context = NULL;
		target->valid = false;
		target->history_relid = InvalidOid;
		target->leaf_relid = InvalidOid;
	}
	if (!target->valid)
	{
		target->valid = true;	/* an invalidation while building clears it */
		PG_TRY();
		{
			build_target(target, source);
		}
		PG_CATCH();
		{
			target->valid = false;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return target;
}

static Datum
call_fallback(CaptureTarget *target, FunctionCallInfo fcinfo)
{
	LOCAL_FCINFO(inner, 0);
	FmgrInfo	flinfo;
	Datum		result;

	statements_handed_over++;
	/* A copy: the cached target may be rebuilt while the fallback runs. */
	fmgr_info_copy(&flinfo, &target->fallback, CurrentMemoryContext);
	InitFunctionCallInfoData(*inner, &flinfo, 0, InvalidOid, fcinfo->context, NULL);
	result = FunctionCallInvoke(inner);
	fcinfo->isnull = inner->isnull;
	return result;
}


/*
 * Rows a statement of many buffers before writing them with one
 * table_multi_insert(), as COPY does: a page is found, locked and logged once
 * for all the rows that fit on it, not once per row. Their index entries
 * follow, row by row, as INSERT makes them. A single-row statement writes
 * its row straight away.
 */
#define HISTORY_BATCH_ROWS 1000
/* The most temporal_ids one nextval gives a capture (next_history_id). */
#define HISTORY_ID_BLOCK 32
#define HISTORY_BATCH_BYTES 65536
/* From this many rows on, a statement also writes through a bulk-insert
 * state: the page it fills stays pinned, in a ring of its own buffers. */
#define HISTORY_BULK_ROWS 1000

/* At most this many BRIN indexes of a history get one row per range. */
#define MAX_TX_RANGES 8

/* Where one capture writes: the history (or its partition) with its indexes. */
typedef struct HistoryWriter
{
	Relation	history;		/* the relation written: a partition of parent */
	Relation	parent;			/* a history partitioned by time, else NULL */
	ResultRelInfo *parent_rri;
	TupleConversionMap *map;	/* history columns to the partition's, if
								 * they differ */
	TupleTableSlot *formed;		/* a row in the history's columns, then */
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	CommandId	cid;
	int64		tx_id;
	uint64		written;
	bool		check_constraints;
	TupleTableSlot **batch;		/* NULL: each row is written at once */
	int			batch_capacity;
	int			batched;
	Size		batch_bytes;
	BulkInsertState bistate;
	MemoryContext context;		/* where the batch's slots live */
	Oid			owner;			/* the history's: constraints run as it */
	int			ntx_ranges;		/* the last indexes of rri: minmax BRIN on
								 * temporal_tx_id (writer_index_entries) */
	BlockNumber range_pages[MAX_TX_RANGES]; /* each one's pages per range */
	BlockNumber last_range[MAX_TX_RANGES];	/* the range each was last given */
	int64		next_id;		/* the next temporal_id of this capture's
								 * block (next_history_id) ... */
	int64		ids_left;		/* ... and how many are left in it */
	int64		id_block;		/* the sequence's increment (0: not read yet) */
	int64		id_max;			/* and its maximum */
	ExprState **checks_all;		/* the history's checks, planned here (NULL:
								 * ExecConstraints plans them) ... */
	ExprState **checks_lean;	/* ... without those on temporal_operation only */
	bool		lean_for[3];	/* those passed for a row of I, U, D */
} HistoryWriter;

static void writer_index_entries(HistoryWriter *writer, TupleTableSlot *slot);

/*
 * The partition of a history partitioned by time that a row of this instant
 * goes to, as the executor's routing finds it (get_partition_for_tuple), or
 * InvalidOid for none, the default partition, or one partitioned further.
 */
static Oid
history_partition_for(Relation parent, TimestampTz at)
{
	PartitionKey key = RelationGetPartitionKey(parent);
	PartitionDesc partitions = RelationGetPartitionDesc(parent, true);
	PartitionBoundInfo bounds;
	Datum		value = TimestampTzGetDatum(at);
	bool		equal = false;
	int			offset;
	int			index;

	if (key == NULL || key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
		partitions == NULL || partitions->nparts == 0 || partitions->boundinfo == NULL)
		return InvalidOid;
	bounds = partitions->boundinfo;
	if (bounds->ndatums == 0)
		return InvalidOid;
	offset = partition_range_datum_bsearch(key->partsupfunc, key->partcollation, bounds, 1, &value, &equal);
	/* The bound at offset is <= the value: offset + 1 ends its partition. */
	index = bounds->indexes[offset + 1];
	if (index < 0 || index == bounds->default_index || !partitions->is_leaf[index])
		return InvalidOid;
	return partitions->oids[index];
}

/*
 * How rows formed for a partitioned history fit one of its partitions: as
 * they are when it has the same columns at the same places and the same
 * CHECK constraints, converted by name when its columns sit elsewhere (made
 * after a column of the history was dropped), not at all when it has
 * triggers or is not a plain table.
 */
static char
partition_layout(Relation parent, Relation leaf)
{
	TupleDesc	p = RelationGetDescr(parent);
	TupleDesc	l = RelationGetDescr(leaf);
	int			pchecks = p->constr ? p->constr->num_check : 0;
	int			lchecks = l->constr ? l->constr->num_check : 0;
	bool		same = p->natts == l->natts;

	if (leaf->rd_rel->relkind != RELKIND_RELATION || leaf->trigdesc != NULL)
		return LEAF_UNUSABLE;
	for (int i = 0; i < p->natts && same; i++)
	{
		Form_pg_attribute pa = TupleDescAttr(p, i);
		Form_pg_attribute la = TupleDescAttr(l, i);

		if (pa->attisdropped != la->attisdropped || pa->attlen != la->attlen ||
			pa->attbyval != la->attbyval || pa->attalign != la->attalign)
			same = false;
		else if (!pa->attisdropped &&
				 (strcmp(NameStr(pa->attname), NameStr(la->attname)) != 0 ||
				  pa->atttypid != la->atttypid || pa->atttypmod != la->atttypmod))
			same = false;
	}
	/* Both sorted by name (the relcache sorts them). */
	if (same && pchecks != lchecks)
		same = false;
	for (int i = 0; i < pchecks && same; i++)
	{
		ConstrCheck *pc = &p->constr->check[i];
		ConstrCheck *lc = &l->constr->check[i];

		if (strcmp(pc->ccname, lc->ccname) != 0 || !equal(stringToNode(pc->ccbin), stringToNode(lc->ccbin)))
			same = false;
#if PG_VERSION_NUM >= 180000
		else if (pc->ccenforced != lc->ccenforced)
			same = false;
#endif
	}
	/* (A partition has every column of its parent, of the same type.) */
	return same ? LEAF_SAME : LEAF_CONVERTED;
}

/*
 * BRIN on temporal_tx_id. Every row a writer writes has the same
 * temporal_tx_id, so once one row of a block range has gone into a minmax
 * BRIN index, the range's summary holds the value and the next rows of the
 * range would leave it as it is (brininsert merges a value into the range's
 * summary, or does nothing for a range not summarised yet; a summarisation
 * under way reads the rows already in the heap, or takes later values into
 * its placeholder; a range desummarised is read whole until summarised again
 * from the heap). Such indexes are moved to the end of the writer's index
 * list, where writer_index_entries gives them one row per range instead of
 * every row: the same index, fewer lookups.
 */
static bool
is_tx_minmax(Relation index, IndexInfo *info, AttrNumber tx_attno)
{
	static Oid	minmax_family = InvalidOid;

	/* (An index still being built concurrently is not written at all.) */
	if (index->rd_rel->relam != BRIN_AM_OID || !info->ii_ReadyForInserts || info->ii_NumIndexAttrs != 1 ||
		info->ii_IndexAttrNumbers[0] != tx_attno || info->ii_Expressions != NIL ||
		info->ii_Predicate != NIL || info->ii_ExclusionOps != NULL || index->rd_opcintype[0] != INT8OID)
		return false;
	if (!OidIsValid(minmax_family))
		minmax_family = get_opclass_family(GetDefaultOpClass(INT8OID, BRIN_AM_OID));
	return OidIsValid(minmax_family) && index->rd_opfamily[0] == minmax_family;
}

/*
 * Moves the writer's minmax BRIN indexes on temporal_tx_id to the end of its
 * index list, the others keeping their order (the order INSERT checks unique
 * indexes in), and notes each one's range size.
 */
static void
find_tx_ranges(HistoryWriter *writer, AttrNumber tx_attno)
{
	ResultRelInfo *rri = writer->rri;
	int			n = rri->ri_NumIndices;
	Relation   *descs;
	IndexInfo **infos;
	bool	   *moved;
	int			at = 0;

	writer->ntx_ranges = 0;
	if (tx_attno == InvalidAttrNumber || n == 0)
		return;
	moved = palloc0(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
		if (writer->ntx_ranges < MAX_TX_RANGES &&
			is_tx_minmax(rri->ri_IndexRelationDescs[i], rri->ri_IndexRelationInfo[i], tx_attno))
		{
			moved[i] = true;
			writer->ntx_ranges++;
		}
	if (writer->ntx_ranges == 0)
	{
		pfree(moved);
		return;
	}
	descs = palloc(sizeof(Relation) * n);
	infos = palloc(sizeof(IndexInfo *) * n);
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < n; i++)
			if (moved[i] == (pass == 1))
			{
				descs[at] = rri->ri_IndexRelationDescs[i];
				infos[at++] = rri->ri_IndexRelationInfo[i];
			}
	memcpy(rri->ri_IndexRelationDescs, descs, sizeof(Relation) * n);
	memcpy(rri->ri_IndexRelationInfo, infos, sizeof(IndexInfo *) * n);
	for (int k = 0; k < writer->ntx_ranges; k++)
	{
		BrinStatsData stats;

		/*
		 * The range size the index was built with, from its metapage: an
		 * ALTER INDEX SET (pages_per_range) takes effect only on REINDEX.
		 */
		brinGetStats(rri->ri_IndexRelationDescs[n - writer->ntx_ranges + k], &stats);
		writer->range_pages[k] = Max(stats.pagesPerRange, 1);
		writer->last_range[k] = InvalidBlockNumber;
	}
	pfree(descs);
	pfree(infos);
	pfree(moved);
}

/* The check states ExecConstraints evaluates for rri's relation. */
static void
set_check_states(ResultRelInfo *rri, ExprState **states)
{
#if PG_VERSION_NUM >= 180000
	rri->ri_CheckConstraintExprs = states;
#else
	rri->ri_ConstraintExprs = states;
#endif
}

/*
 * Opens what a capture writes. False when the rows of this statement are
 * for the PL/pgSQL function (a partitioned history's partition it cannot
 * write); nothing is left open then.
 */
static bool
writer_open(HistoryWriter *writer, CaptureTarget *target, uint64 expected_rows)
{
	writer->parent = NULL;
	writer->parent_rri = NULL;
	if (target->partitioned)
	{
		Oid			leaf;

		writer->parent = table_open(target->history_relid, RowExclusiveLock);
		leaf = history_partition_for(writer->parent, GetCurrentTransactionStartTimestamp());
		if (!OidIsValid(leaf))
		{
			table_close(writer->parent, NoLock);
			return false;
		}
		writer->history = table_open(leaf, RowExclusiveLock);
		if (leaf != target->leaf_relid)
		{
			target->leaf_layout = partition_layout(writer->parent, writer->history);
			target->leaf_relid = leaf;
		}
		if (target->leaf_layout == LEAF_UNUSABLE)
		{
			table_close(writer->history, NoLock);
			table_close(writer->parent, NoLock);
			return false;
		}
	}
	else
		writer->history = table_open(target->history_relid, RowExclusiveLock);
	writer->estate = CreateExecutorState();
	writer->map = NULL;
	writer->formed = NULL;
	if (writer->parent != NULL)
	{
		/*
		 * As a row routed through the history: its constraint errors show
		 * the row in the history's columns (and name the partition).
		 */
		writer->parent_rri = makeNode(ResultRelInfo);
		InitResultRelInfo(writer->parent_rri, writer->parent, 0, NULL, 0);
		if (target->leaf_layout == LEAF_CONVERTED)
		{
			writer->map = convert_tuples_by_name(RelationGetDescr(writer->parent), RelationGetDescr(writer->history));
			if (writer->map != NULL)
				writer->formed = MakeSingleTupleTableSlot(RelationGetDescr(writer->parent), &TTSOpsVirtual);
		}
	}
	writer->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(writer->rri, writer->history, 0, writer->parent_rri, 0);
	ExecOpenIndices(writer->rri, false);
	writer->check_constraints = RelationGetDescr(writer->history)->constr != NULL;
	/* As the PL/pgSQL path's INSERT, whose function runs as the history's owner. */
	writer->owner = RelationGetForm(writer->parent != NULL ? writer->parent : writer->history)->relowner;
	/*
	 * The history's checks, planned once. For a partition whose rows are
	 * converted, ExecConstraints plans the partition's own, in the
	 * statement's memory.
	 */
	writer->checks_all = NULL;
	writer->checks_lean = NULL;
	memset(writer->lean_for, 0, sizeof(writer->lean_for));
	if (target->check_exprs != NULL && (writer->parent == NULL || target->leaf_layout == LEAF_SAME))
	{
		MemoryContext old = MemoryContextSwitchTo(writer->estate->es_query_cxt);
		ExprState **states = palloc0(sizeof(ExprState *) * target->nchecks);
		Oid			saved_user;
		int			saved_context;

		/* As the PL/pgSQL path's INSERT: its function runs as the owner. */
		GetUserIdAndSecContext(&saved_user, &saved_context);
		SetUserIdAndSecContext(writer->owner, saved_context | SECURITY_LOCAL_USERID_CHANGE);
		for (int i = 0; i < target->nchecks; i++)
			if (target->check_exprs[i] != NULL)
				states[i] = ExecInitCheck((List *) target->check_exprs[i], NULL);
		SetUserIdAndSecContext(saved_user, saved_context);
		/*
		 * A check that reads temporal_operation only, with immutable
		 * functions, gives every row of an operation the same answer: once a
		 * row of it passed them all, its next rows are checked without those.
		 */
		writer->checks_all = states;
		writer->checks_lean = palloc0(sizeof(ExprState *) * target->nchecks);
		for (int i = 0; i < target->nchecks; i++)
			writer->checks_lean[i] = target->check_op_only[i] ? NULL : states[i];
		MemoryContextSwitchTo(old);
		set_check_states(writer->rri, states);
	}
	writer->slot = MakeSingleTupleTableSlot(RelationGetDescr(writer->history), &TTSOpsVirtual);
	writer->cid = GetCurrentCommandId(true);
	writer->tx_id = (int64) U64FromFullTransactionId(GetTopFullTransactionId());
	writer->written = 0;
	writer->batch = NULL;
	writer->batch_capacity = 0;
	writer->batched = 0;
	writer->batch_bytes = 0;
	writer->bistate = NULL;
	writer->context = CurrentMemoryContext;
	if (expected_rows > 1)
	{
		writer->batch_capacity = (int) Min(expected_rows, HISTORY_BATCH_ROWS);
		writer->batch = palloc0(sizeof(TupleTableSlot *) * writer->batch_capacity);
		if (expected_rows >= HISTORY_BULK_ROWS)
			writer->bistate = GetBulkInsertState();
	}
	/*
	 * For statements of many rows. (A conversion map means the partition's
	 * columns sit elsewhere.)
	 */
	writer->next_id = 0;
	writer->ids_left = 0;
	writer->id_block = 0;
	writer->id_max = PG_INT64_MAX;
	writer->ntx_ranges = 0;
	if (expected_rows > 1)
		find_tx_ranges(writer, writer->map == NULL ? target->tx_attno :
					   get_attnum(RelationGetRelid(writer->history), "temporal_tx_id"));
	return true;
}

/* Writes the buffered rows: the heap in one go, then each row's index entries. */
static void
writer_flush(HistoryWriter *writer)
{
	if (writer->batched == 0)
		return;
	table_multi_insert(writer->history, writer->batch, writer->batched, writer->cid, 0, writer->bistate);
	for (int i = 0; i < writer->batched; i++)
	{
		writer_index_entries(writer, writer->batch[i]);
		ResetPerTupleExprContext(writer->estate);
		ExecClearTuple(writer->batch[i]);
	}
	writer->batched = 0;
	writer->batch_bytes = 0;
}

static void
writer_close(HistoryWriter *writer)
{
	writer_flush(writer);
	for (int i = 0; i < writer->batch_capacity; i++)
		if (writer->batch[i] != NULL)
			ExecDropSingleTupleTableSlot(writer->batch[i]);
	if (writer->bistate != NULL)
		FreeBulkInsertState(writer->bistate);
	ExecDropSingleTupleTableSlot(writer->slot);
	if (writer->formed != NULL)
		ExecDropSingleTupleTableSlot(writer->formed);
	ExecCloseIndices(writer->rri);
	FreeExecutorState(writer->estate);
	table_close(writer->history, NoLock);
	if (writer->parent != NULL)
		table_close(writer->parent, NoLock);
}

/* The index entries of a row just inserted (its tts_tid set), as INSERT makes them. */
static void
insert_index_entries(ResultRelInfo *rri, EState *estate, TupleTableSlot *slot)
{
	List	   *recheck;

	if (rri->ri_NumIndices == 0)
		return;
#if PG_VERSION_NUM >= 160000
	recheck = ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL, false);
#else
	recheck = ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
#endif
	list_free(recheck);
}

/*
 * A written row's index entries: all of them as INSERT makes them, but the
 * minmax BRIN indexes on temporal_tx_id (find_tx_ranges) only for the first
 * row of each block range. The first row of a range's first page still goes
 * in, so that autosummarize asks for the range before it as INSERT would.
 */
static void
writer_index_entries(HistoryWriter *writer, TupleTableSlot *slot)
{
	ResultRelInfo *rri = writer->rri;
	int			all = rri->ri_NumIndices;
	int			others = all - writer->ntx_ranges;
	BlockNumber block = ItemPointerGetBlockNumber(&slot->tts_tid);
	bool		range_start = ItemPointerGetOffsetNumber(&slot->tts_tid) == FirstOffsetNumber;

	rri->ri_NumIndices = others;
	insert_index_entries(rri, writer->estate, slot);
	rri->ri_NumIndices = all;
	for (int i = others; i < all; i++)
	{
		Relation	index = rri->ri_IndexRelationDescs[i];
		BlockNumber per_range = writer->range_pages[i - others];
		BlockNumber range = block / per_range;
		Datum		value = Int64GetDatum(writer->tx_id);
		bool		isnull = false;

		if (range == writer->last_range[i - others] && !(range_start && block % per_range == 0))
			continue;
		index_insert(index, &value, &isnull, &slot->tts_tid, writer->history, UNIQUE_CHECK_NO, false,
					 rri->ri_IndexRelationInfo[i]);
		writer->last_range[i - others] = range;
	}
}

static void
insert_with_indexes(Relation relation, ResultRelInfo *rri, EState *estate, TupleTableSlot *slot, CommandId cid)
{
	table_tuple_insert(relation, slot, cid, 0, NULL);
	insert_index_entries(rri, estate, slot);
}

/*
 * The next temporal_id. Each nextval of the history's sequence, which moves
 * it by its increment (32 for a history made by enable), gives this capture
 * the values from the one returned up to the next one's (at most
 * HISTORY_ID_BLOCK of them; on_alter_table moves a history's sequence past
 * that many when it is altered, say to a lower increment): the rows of one
 * statement take them in turn, one nextval per block. A block is used only
 * by the capture that drew it, and what is left of it is dropped with the
 * writer, so a later change still takes a larger value than every change it
 * follows, as with a nextval per row: values are drawn while this capture
 * runs, after the statement took its row locks, and never kept for a later
 * statement (whose changes could follow another session's). The PL/pgSQL path
 * draws a block per row.
 */
static int64
next_history_id(HistoryWriter *writer, CaptureTarget *target)
{
	int64		last;

	if (writer->ids_left > 0)
	{
		writer->ids_left--;
		return ++writer->next_id;
	}
	writer->next_id = nextval_internal(target->sequence_relid, false);
	if (writer->id_block == 0)
	{
		/*
		 * Read after the first nextval: it locked the sequence for the rest
		 * of the transaction (ALTER SEQUENCE waits for that lock, and the
		 * syscache saw what had committed before it).
		 */
		HeapTuple	tuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(target->sequence_relid));

		writer->id_block = 1;
		writer->id_max = PG_INT64_MAX;
		if (HeapTupleIsValid(tuple))
		{
			Form_pg_sequence form = (Form_pg_sequence) GETSTRUCT(tuple);

			/*
			 * Not with a cache: nextval then hands out values this backend
			 * drew earlier, moving by the increment of that time.
			 */
			if (form->seqcache == 1 && form->seqincrement > 1)
				writer->id_block = Min(form->seqincrement, HISTORY_ID_BLOCK);
			writer->id_max = form->seqmax;
			ReleaseSysCache(tuple);
		}
	}
	/* The block, but nothing past the sequence's maximum. */
	writer->ids_left = writer->id_block - 1;
	if (pg_add_s64_overflow(writer->next_id, writer->ids_left, &last) || last > writer->id_max)
		writer->ids_left = writer->next_id < writer->id_max ? writer->id_max - writer->next_id : 0;
	return writer->next_id;
}

/*
 * One history row: temporal_id from the identity sequence, the transaction,
 * the operation, and the given source values (all of them, or only the key).
 */
static void
write_history_row(HistoryWriter *writer, CaptureTarget *target, char operation,
				  TupleTableSlot *source, bool key_only)
{
	TupleTableSlot *slot;
	TupleTableSlot *stored;		/* the partition's row, when converted */
	int			natts;

	if (writer->batch == NULL)
		slot = writer->slot;
	else
	{
		if (writer->batch[writer->batched] == NULL)
		{
			/* In the writer's context: the caller's is reset row by row. */
			MemoryContext old = MemoryContextSwitchTo(writer->context);

			writer->batch[writer->batched] = table_slot_create(writer->history, NULL);
			MemoryContextSwitchTo(old);
		}
		slot = writer->batch[writer->batched];
	}
	stored = slot;
	if (writer->map != NULL)
		slot = writer->formed;	/* converted into stored below */
	natts = slot->tts_tupleDescriptor->natts;
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * natts);
	slot->tts_values[target->id_attno - 1] = Int64GetDatum(next_history_id(writer, target));
	slot->tts_isnull[target->id_attno - 1] = false;
	slot->tts_values[target->tx_attno - 1] = Int64GetDatum(writer->tx_id);
	slot->tts_isnull[target->tx_attno - 1] = false;
	slot->tts_values[target->op_attno - 1] = CharGetDatum(operation);
	slot->tts_isnull[target->op_attno - 1] = false;
	if (target->at_attno != InvalidAttrNumber)
	{
		/* now(), the default: the transaction's start. */
		slot->tts_values[target->at_attno - 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		slot->tts_isnull[target->at_attno - 1] = false;
	}
	for (int i = 0; i < target->natts; i++)
	{
		AttrNumber	attno = target->history_attno[i];

		if (attno == 0 || (key_only && !target->is_key[i]))
			continue;
		slot->tts_values[attno - 1] = source->tts_values[i];
		slot->tts_isnull[attno - 1] = source->tts_isnull[i];
	}
	ExecStoreVirtualTuple(slot);
	if (writer->map != NULL)
		slot = execute_attr_map_slot(writer->map->attrMap, slot, stored);
	/* NOT NULL and CHECK, with PostgreSQL's own errors, as INSERT has them. */
	if (writer->check_constraints)
	{
		Oid			saved_user;
		int			saved_context;

		/* (An error here is unwound by the transaction's abort.) */
		int			op_index = operation == 'I' ? 0 : operation == 'U' ? 1 : operation == 'D' ? 2 : -1;
		bool		lean = writer->checks_all != NULL && op_index >= 0 && writer->lean_for[op_index];

		GetUserIdAndSecContext(&saved_user, &saved_context);
		SetUserIdAndSecContext(writer->owner, saved_context | SECURITY_LOCAL_USERID_CHANGE);
		if (writer->checks_all != NULL)
			set_check_states(writer->rri, lean ? writer->checks_lean : writer->checks_all);
		ExecConstraints(writer->rri, slot, writer->estate);
		SetUserIdAndSecContext(saved_user, saved_context);
		ResetPerTupleExprContext(writer->estate);
		/* (ExecConstraints returns only when every check passed.) */
		if (writer->checks_all != NULL && op_index >= 0)
			writer->lean_for[op_index] = true;
	}
	writer->written++;
	if (writer->batch == NULL)
	{
		table_tuple_insert(writer->history, slot, writer->cid, 0, NULL);
		writer_index_entries(writer, slot);
		ResetPerTupleExprContext(writer->estate);
		return;
	}
	/* The row's own copy: the source row it points into is read past next. */
	{
		bool		should_free;
		HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, true, &should_free);

		writer->batch_bytes += tuple->t_len;
		if (should_free)
			heap_freetuple(tuple);
	}
	writer->batched++;
	if (writer->batched == writer->batch_capacity || writer->batch_bytes >= HISTORY_BATCH_BYTES)
		writer_flush(writer);
}

/* A reader of a transition table with a read pointer of its own. */
static TupleTableSlot *
open_transition(Tuplestorestate *store, TupleDesc desc, int *pointer)
{
	*pointer = tuplestore_alloc_read_pointer(store, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(store, *pointer);
	tuplestore_rescan(store);
	return MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
}

/* The next row, its first natts attributes deformed (all for -1). */
static bool
next_row_attrs(Tuplestorestate *store, int pointer, TupleTableSlot *slot, int natts)
{
	tuplestore_select_read_pointer(store, pointer);
	if (!tuplestore_gettupleslot(store, true, false, slot))
		return false;
	if (natts < 0)
		slot_getallattrs(slot);
	else
		slot_getsomeattrs(slot, natts);
	return true;
}

static bool
next_row(Tuplestorestate *store, int pointer, TupleTableSlot *slot)
{
	return next_row_attrs(store, pointer, slot, -1);
}

static bool
same_value(Form_pg_attribute attr, bool is_bpchar, Datum a, bool a_null, Datum b, bool b_null)
{
	if (a_null || b_null)
		return a_null && b_null;
	/* As differs_sql: bpchar by its own equality under "C", all else by image. */
	if (is_bpchar)
		return DatumGetBool(DirectFunctionCall2Coll(bpchareq, C_COLLATION_OID, a, b));
	return datum_image_eq(a, b, attr->attbyval, attr->attlen);
}

/* Whether every old row pairs, in order, with the new row of the same key. */
static bool
updates_pair_up(CaptureTarget *target, TupleDesc desc, Tuplestorestate *old_rows, Tuplestorestate *new_rows)
{
	int			old_pointer,
				new_pointer;
	TupleTableSlot *old_slot = open_transition(old_rows, desc, &old_pointer);
	TupleTableSlot *new_slot = open_transition(new_rows, desc, &new_pointer);
	bool		paired = true;

	if (tuplestore_tuple_count(old_rows) != tuplestore_tuple_count(new_rows))
		paired = false;
	while (paired)
	{
		bool		more_old = next_row(old_rows, old_pointer, old_slot);
		bool		more_new = next_row(new_rows, new_pointer, new_slot);

		if (more_old != more_new)
			paired = false;
		if (!more_old || !paired)
			break;
		for (int k = 0; k < target->nkeys && paired; k++)
		{
			int			i = target->key_attno[k] - 1;
			Form_pg_attribute attr = TupleDescAttr(desc, i);

			if (old_slot->tts_isnull[i] || new_slot->tts_isnull[i] ||
				!datum_image_eq(old_slot->tts_values[i], new_slot->tts_values[i], attr->attbyval, attr->attlen))
				paired = false;
		}
	}
	ExecDropSingleTupleTableSlot(old_slot);
	ExecDropSingleTupleTableSlot(new_slot);
	return paired;
}

static void
capture_rows(HistoryWriter *writer, CaptureTarget *target, TupleDesc desc, Tuplestorestate *rows,
			 char operation, MemoryContext per_row)
{
	int			pointer;
	TupleTableSlot *slot = open_transition(rows, desc, &pointer);
	int			natts = -1;

	/* An INSERT keeps only the key: the attributes up to its last. */
	if (operation == 'I')
	{
		natts = 0;
		for (int k = 0; k < target->nkeys; k++)
			natts = Max(natts, target->key_attno[k]);
	}
	while (next_row_attrs(rows, pointer, slot, natts))
	{
		MemoryContext old = MemoryContextSwitchTo(per_row);

		write_history_row(writer, target, operation, slot, operation == 'I');
		MemoryContextSwitchTo(old);
		MemoryContextReset(per_row);
	}
	ExecDropSingleTupleTableSlot(slot);
}

static void
capture_updates(HistoryWriter *writer, CaptureTarget *target, TupleDesc desc,
				Tuplestorestate *old_rows, Tuplestorestate *new_rows, MemoryContext per_row)
{
	int			old_pointer,
				new_pointer;
	TupleTableSlot *old_slot = open_transition(old_rows, desc, &old_pointer);
	TupleTableSlot *new_slot = open_transition(new_rows, desc, &new_pointer);

	while (next_row(old_rows, old_pointer, old_slot) && next_row(new_rows, new_pointer, new_slot))
	{
		bool		changed = false;

		for (int i = 0; i < target->natts && !changed; i++)
		{
			Form_pg_attribute attr = TupleDescAttr(desc, i);

			if (attr->attisdropped || target->is_key[i])
				continue;
			changed = !same_value(attr, target->is_bpchar[i],
								  old_slot->tts_values[i], old_slot->tts_isnull[i],
								  new_slot->tts_values[i], new_slot->tts_isnull[i]);
		}
		if (changed)
		{
			MemoryContext old = MemoryContextSwitchTo(per_row);

			write_history_row(writer, target, 'U', old_slot, false);
			MemoryContextSwitchTo(old);
			MemoryContextReset(per_row);
		}
	}
	ExecDropSingleTupleTableSlot(old_slot);
	ExecDropSingleTupleTableSlot(new_slot);
}

static Datum
nullable_text(const char *value, bool *isnull)
{
	*isnull = value == NULL || value[0] == '\0';
	return *isnull ? (Datum) 0 : CStringGetTextDatum(value);
}

static bool
transactions_row_exists(Relation transactions, int64 tx_id)
{
#if PG_VERSION_NUM >= 170000
	Oid			index = RelationGetPrimaryKeyIndex(transactions, false);
#else
	Oid			index = RelationGetPrimaryKeyIndex(transactions);
#endif
	ScanKeyData key;
	SysScanDesc scan;
	bool		exists;

	if (!OidIsValid(index))
		elog(ERROR, "temporal_versioning.transactions has no primary key");
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(tx_id));
	scan = systable_beginscan(transactions, index, true, SnapshotSelf, 1, &key);
	exists = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	return exists;
}

/* The transaction's context, as the PL/pgSQL function's INSERT writes it. */
static void
write_transactions_row(void)
{
	FullTransactionId fxid = GetTopFullTransactionId();
	int64		tx_id = (int64) U64FromFullTransactionId(fxid);
	Oid			transactions_oid;
	Relation	transactions;
	TupleDesc	desc;
	TupleTableSlot *slot;
	EState	   *estate;
	ResultRelInfo *rri;
	const char *role;
	AttrNumber	attno;

	if (tx_row_written && FullTransactionIdEquals(tx_row_fxid, fxid))
		return;
	lookup_catalog(NULL, &transactions_oid);
	transactions = table_open(transactions_oid, RowExclusiveLock);
	if (!transactions_row_exists(transactions, tx_id))
	{
		desc = RelationGetDescr(transactions);
		estate = CreateExecutorState();
		rri = makeNode(ResultRelInfo);
		InitResultRelInfo(rri, transactions, 0, NULL, 0);
		ExecOpenIndices(rri, false);
		slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
		ExecClearTuple(slot);
		memset(slot->tts_isnull, true, sizeof(bool) * desc->natts);

#define SET_COLUMN(name, datum, null) \
		do { \
			attno = get_attnum(transactions_oid, name); \
			if (attno <= 0) \
				elog(ERROR, "temporal_versioning.transactions has no column %s", name); \
			slot->tts_values[attno - 1] = (datum); \
			slot->tts_isnull[attno - 1] = (null); \
		} while (0)

		SET_COLUMN("tx_id", Int64GetDatum(tx_id), false);
		SET_COLUMN("valid_from", TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
		role = GetConfigOptionByName("role", NULL, false);
		if (strcmp(role, "none") == 0)
			SET_COLUMN("db_user", CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false)), false);
		else
			SET_COLUMN("db_user", CStringGetTextDatum(role), false);
		{
			bool		isnull;
			Datum		value = nullable_text(GetConfigOptionByName("application_name", NULL, false), &isnull);

			SET_COLUMN("application_name", value, isnull);
			value = nullable_text(GetConfigOptionByName("temporal.user_id", NULL, true), &isnull);
			SET_COLUMN("user_id", value, isnull);
			value = nullable_text(GetConfigOptionByName("temporal.changeset_id", NULL, true), &isnull);
			SET_COLUMN("changeset_id", value, isnull);
		}
		{
			LOCAL_FCINFO(client, 0);
			Datum		address;

			InitFunctionCallInfoData(*client, NULL, 0, InvalidOid, NULL, NULL);
			address = inet_client_addr(client);
			SET_COLUMN("client_addr", address, client->isnull);
		}
#undef SET_COLUMN
		ExecStoreVirtualTuple(slot);
		insert_with_indexes(transactions, rri, estate, slot, GetCurrentCommandId(true));
		ExecDropSingleTupleTableSlot(slot);
		ExecCloseIndices(rri);
		FreeExecutorState(estate);
	}
	table_close(transactions, NoLock);
	tx_row_written = true;
	tx_row_fxid = fxid;
	tx_row_subxid = GetCurrentSubTransactionId();
}

Datum
temporal_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	TriggerEvent event;
	CaptureTarget *target;
	HistoryWriter writer;
	TupleDesc	desc;
	MemoryContext per_row;
	uint64		expected_rows;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("temporal_versioning._capture_c() can only be called as a trigger")));
	trigdata = (TriggerData *) fcinfo->context;
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_AFTER(event) || !TRIGGER_FIRED_FOR_STATEMENT(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("temporal_versioning._capture_c() must fire AFTER, FOR EACH STATEMENT")));

	target = get_target(trigdata->tg_relation);
	if (!target->use_c || TRIGGER_FIRED_BY_TRUNCATE(event))
		return call_fallback(target, fcinfo);

	desc = RelationGetDescr(trigdata->tg_relation);
	if (TRIGGER_FIRED_BY_UPDATE(event))
	{
		if (trigdata->tg_oldtable == NULL || trigdata->tg_newtable == NULL)
			return call_fallback(target, fcinfo);
		if (!updates_pair_up(target, desc, trigdata->tg_oldtable, trigdata->tg_newtable))
			return call_fallback(target, fcinfo);
	}
	else if ((TRIGGER_FIRED_BY_INSERT(event) && trigdata->tg_newtable == NULL) ||
			 (TRIGGER_FIRED_BY_DELETE(event) && trigdata->tg_oldtable == NULL))
		return call_fallback(target, fcinfo);

	expected_rows = tuplestore_tuple_count(TRIGGER_FIRED_BY_INSERT(event) ? trigdata->tg_newtable : trigdata->tg_oldtable);
	if (!writer_open(&writer, target, expected_rows))
	{
		/* (Invalidated while the locks were taken: its fallback may be too.) */
		if (!target->valid)
			target = get_target(trigdata->tg_relation);
		return call_fallback(target, fcinfo);
	}
	/* Invalidated while the history's lock was taken: start again. */
	if (!target->valid)
	{
		writer_close(&writer);
		target = get_target(trigdata->tg_relation);
		if (!target->use_c || !writer_open(&writer, target, expected_rows))
		{
			if (!target->valid)
				target = get_target(trigdata->tg_relation);
			return call_fallback(target, fcinfo);
		}
	}
	per_row = AllocSetContextCreate(CurrentMemoryContext, "temporal capture row", ALLOCSET_DEFAULT_SIZES);
	if (TRIGGER_FIRED_BY_INSERT(event))
		capture_rows(&writer, target, desc, trigdata->tg_newtable, 'I', per_row);
	else if (TRIGGER_FIRED_BY_DELETE(event))
		capture_rows(&writer, target, desc, trigdata->tg_oldtable, 'D', per_row);
	else
		capture_updates(&writer, target, desc, trigdata->tg_oldtable, trigdata->tg_newtable, per_row);
	MemoryContextDelete(per_row);
	writer_flush(&writer);
	if (writer.written > 0)
		write_transactions_row();
	writer_close(&writer);
	statements_in_c++;
	return PointerGetDatum(NULL);
}

/* The version of this library, to check it against the installed SQL. */
Datum
temporal_capture_library_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(TEMPORAL_LIBRARY_VERSION));
}

/* The statements this backend captured in C and handed to PL/pgSQL. */
Datum
temporal_capture_statements(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "temporal_versioning._capture_c_statements() must return a record");
	desc = BlessTupleDesc(desc);
	values[0] = Int64GetDatum(statements_in_c);
	values[1] = Int64GetDatum(statements_handed_over);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * The BEFORE statement trigger that puts the transaction's SET LOCAL
 * temporal.user_id / temporal.changeset_id into the WAL once, for change
 * streaming: what temporal_versioning._emit_change_context() does, setting
 * for setting; the message itself is written by the same SQL function,
 * _emit_context_message(), so there is one definition of it.
 */
Datum
temporal_emit_change_context(PG_FUNCTION_ARGS)
{
	const char *emitted;
	const char *user_id;
	const char *changeset_id;
	bool		has_user;
	bool		has_changeset;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(((TriggerData *) fcinfo->context)->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(((TriggerData *) fcinfo->context)->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("temporal_versioning._emit_change_context_c() must fire BEFORE, FOR EACH STATEMENT")));
	emitted = GetConfigOption("temporal.context_emitted", true, false);
	if (emitted != NULL && strcmp(emitted, "on") == 0)
		return PointerGetDatum(NULL);
	user_id = GetConfigOption("temporal.user_id", true, false);
	changeset_id = GetConfigOption("temporal.changeset_id", true, false);
	has_user = user_id != NULL && user_id[0] != '\0';
	has_changeset = changeset_id != NULL && changeset_id[0] != '\0';
	if ((has_user || has_changeset) && XLogLogicalInfoActive())
	{
		Oid			argtypes[2] = {TEXTOID, TEXTOID};
		Oid			function = LookupFuncName(list_make2(makeString(TEMPORAL_SCHEMA),
														 makeString("_emit_context_message")),
											  2, argtypes, false);
		FmgrInfo	flinfo;
		LOCAL_FCINFO(call, 2);

		/* Copies: calling the function may change the settings. */
		user_id = has_user ? pstrdup(user_id) : NULL;
		changeset_id = has_changeset ? pstrdup(changeset_id) : NULL;
		fmgr_info(function, &flinfo);
		InitFunctionCallInfoData(*call, &flinfo, 2, InvalidOid, NULL, NULL);
		call->args[0].value = has_user ? CStringGetTextDatum(user_id) : (Datum) 0;
		call->args[0].isnull = !has_user;
		call->args[1].value = has_changeset ? CStringGetTextDatum(changeset_id) : (Datum) 0;
		call->args[1].isnull = !has_changeset;
		(void) FunctionCallInvoke(call);
	}
	return PointerGetDatum(NULL);
}
