/*
 * cmd_org.c - `voxctl org create|show`: organizations for operators,
 * straight in Postgres as the owner role (VOX_PG_DSN). create inserts the
 * row and records a non-zero opening balance in the ledger in the same
 * transaction, so the wallet always equals the sum of its ledger.
 */
#include "voxctl/org.h"

#include "core/codec.h"
#include "io/pg.h"

/* The columns both subcommands print, as one JSON object. */
#define ORG_JSON                                                             \
	"SELECT json_build_object("                                          \
	"'id', o.id, 'name', o.name, 'email', o.email, 'plan', o.plan,"      \
	" 'balance_pence', o.wallet_balance_pence,"                          \
	" 'debt_limit_pence', o.debt_limit_pence,"                           \
	" 'low_balance_pence', o.low_balance_pence,"                         \
	" 'unbilled_pence', o.unbilled_pence,"                               \
	" 'ledger_rows', (SELECT count(*) FROM credit_transactions t"        \
	"                  WHERE t.org_id = o.id),"                          \
	" 'ledger_sum_pence', (SELECT coalesce(sum(t.amount_pence), 0)"      \
	"                  FROM credit_transactions t WHERE t.org_id = o.id),"\
	" 'created_at', to_char(o.created_at AT TIME ZONE 'UTC',"            \
	"                  'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))::text"      \
	" FROM organizations o WHERE o.id = $1::uuid"

int voxctl_pg_connect(PGconn **c)
{
	char msg[512];
	const char *dsn = getenv("VOX_PG_DSN");
	*c = NULL;
	if (!dsn || !*dsn) {
		voxctl_err("VOX_PG_DSN is not set (the PostgreSQL connection"
			   " string of the owner role)");
		return EXIT_USAGE;
	}
	vox_status st = vox_pg_connect(c, dsn, msg, sizeof(msg));
	if (st != VOX_OK) {
		voxctl_err("cannot reach PostgreSQL: %s", msg);
		return st == VOX_E_UNAVAILABLE || vox_status_is_transient(st)
			       ? EXIT_UNREACHABLE
			       : EXIT_USAGE;
	}
	return EXIT_OK;
}

static int pg_fail(PGconn *c, PGresult *r, const char *what)
{
	vox_status st = vox_pg_status(c, r);
	const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
	char line[300];
	snprintf(line, sizeof(line), "%s", m && *m ? m : "failed");
	line[strcspn(line, "\n")] = '\0';
	voxctl_err("%s: %s", what, line);
	return vox_status_is_transient(st) ? EXIT_UNREACHABLE : EXIT_SERVER;
}

static void rollback(PGconn *c)
{
	char e[128];
	vox_status st = vox_pg_exec(c, "ROLLBACK", e, sizeof(e));
	VOX_UNUSED(st);
}

int voxctl_org_insert(PGconn *c, const voxctl_org *o, char id_out[37])
{
	char bal[24], debt[24], low[24], e[256];
	snprintf(bal, sizeof(bal), "%" PRId64, o->balance);
	snprintf(debt, sizeof(debt), "%" PRId64, o->debt_limit);
	snprintf(low, sizeof(low), "%" PRId64, o->low_balance);
	const char *p[7] = {o->id, o->name, o->email, o->plan, bal, debt, low};

	vox_status st = vox_pg_exec(c, "BEGIN", e, sizeof(e));
	if (st != VOX_OK) {
		voxctl_err("org create: %s", e);
		return vox_status_is_transient(st) ? EXIT_UNREACHABLE : EXIT_SERVER;
	}
	PGresult *r = PQexecParams(
		c,
		"INSERT INTO organizations (id, name, email, plan,"
		" wallet_balance_pence, debt_limit_pence, low_balance_pence)"
		" VALUES (coalesce($1::uuid, gen_random_uuid()), $2, $3, $4,"
		" $5::bigint, $6::bigint, $7::bigint) RETURNING id::text",
		7, NULL, p, NULL, NULL, 0);
	if (vox_pg_status(c, r) == VOX_E_CONFLICT) {
		PQclear(r);
		rollback(c);
		voxctl_err("org create: an organization with id %s already exists",
			   o->id ? o->id : "?");
		return EXIT_SERVER;
	}
	if (vox_pg_status(c, r) != VOX_OK) {
		int code = pg_fail(c, r, "org create");
		PQclear(r);
		rollback(c);
		return code;
	}
	snprintf(id_out, 37, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	if (o->balance != 0) {
		const char *q[2] = {id_out, bal};
		r = PQexecParams(c,
				 "INSERT INTO credit_transactions (org_id, amount_pence,"
				 " type, description, balance_before_pence,"
				 " balance_after_pence) VALUES ($1::uuid, $2::bigint,"
				 " 'topup', 'opening balance', 0, $2::bigint)",
				 2, NULL, q, NULL, NULL, 0);
		if (vox_pg_status(c, r) != VOX_OK) {
			int code = pg_fail(c, r, "org create: ledger");
			PQclear(r);
			rollback(c);
			return code;
		}
		PQclear(r);
	}
	st = vox_pg_exec(c, "COMMIT", e, sizeof(e));
	if (st != VOX_OK) {
		voxctl_err("org create: commit: %s", e);
		return vox_status_is_transient(st) ? EXIT_UNREACHABLE : EXIT_SERVER;
	}
	return EXIT_OK;
}

static bool org_time_key(const char *key, size_t n, void *ctx)
{
	VOX_UNUSED(ctx);
	return key && n == 10 && memcmp(key, "created_at", 10) == 0;
}

/* Print the org as JSON; EXIT_SERVER (printed) when there is none. */
static int print_org(PGconn *c, const char *id)
{
	const char *p[1] = {id};
	PGresult *r = PQexecParams(c, ORG_JSON, 1, NULL, p, NULL, NULL, 0);
	if (vox_pg_status(c, r) != VOX_OK) {
		int code = pg_fail(c, r, "org show");
		PQclear(r);
		return code;
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		voxctl_err("org show: no organization with id %s", id);
		return EXIT_SERVER;
	}
	const char *text = PQgetvalue(r, 0, 0);
	vox_json *v = voxctl_parse_json("org", text, strlen(text));
	int code = EXIT_SERVER;
	if (v) {
		vox_buf mp;
		vox_buf_init(&mp);
		voxctl_json_to_mp(&mp, v, org_time_key, NULL);
		if (voxctl_print_mp(mp.data, mp.len))
			code = EXIT_OK;
		vox_buf_release(&mp);
		vox_json_free(v);
	}
	PQclear(r);
	return code;
}

/* An amount option in [lo, hi] (pence). The amounts take what their
 * bigint columns take: 0 up to INT64_MAX (the debt limit and the
 * threshold have CHECK (>= 0); the opening balance is a 'topup' ledger
 * row, whose amount is positive). */
static bool parse_int(const char *opt, const char *s, int64_t lo, int64_t hi,
		      int64_t *out)
{
	long long v;
	if (!voxctl_int_opt(&v, "org create", opt, s, lo, hi))
		return false;
	*out = v;
	return true;
}

static int org_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"email", required_argument, NULL, 'e'},
		{"id", required_argument, NULL, 'i'},
		{"balance", required_argument, NULL, 'b'},
		{"debt-limit", required_argument, NULL, 'd'},
		{"low-balance", required_argument, NULL, 'l'},
		{"plan", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	voxctl_org o = {.plan = "starter", .debt_limit = 500, .low_balance = 1000};
	vox_uuid id;
	int opt;

	/* argv[0] is "create" */
	voxctl_getopt_reset();
	while ((opt = voxctl_getopt("org create", argc - 1, argv + 1, "", opts)) != -1) {
		const char *v = optarg;
		switch (opt) {
		case 'n':
			o.name = v;
			break;
		case 'e':
			o.email = v;
			break;
		case 'i':
			if (!vox_uuid_parse(&id, v, strlen(v))) {
				voxctl_usage_err("org create", "--id: '%s' is not a UUID", v);
				return EXIT_USAGE;
			}
			o.id = id.s;
			break;
		case 'b':
			if (!parse_int("--balance", v, 0, INT64_MAX, &o.balance))
				return EXIT_USAGE;
			break;
		case 'd':
			if (!parse_int("--debt-limit", v, 0, INT64_MAX, &o.debt_limit))
				return EXIT_USAGE;
			break;
		case 'l':
			if (!parse_int("--low-balance", v, 0, INT64_MAX, &o.low_balance))
				return EXIT_USAGE;
			break;
		case 'p':
			if (strcmp(v, "starter") != 0 && strcmp(v, "professional") != 0 &&
			    strcmp(v, "enterprise") != 0) {
				voxctl_usage_err("org create", "--plan: must be starter,"
						 " professional or enterprise (got '%s')", v);
				return EXIT_USAGE;
			}
			o.plan = v;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc - 1) {
		voxctl_usage_err("org create", "unexpected argument '%s'",
				 argv[1 + optind]);
		return EXIT_USAGE;
	}
	if (!o.name || !*o.name || !o.email || !*o.email) {
		voxctl_usage_err("org create", "--name and --email are required");
		return EXIT_USAGE;
	}
	if (!strchr(o.email, '@')) {
		voxctl_err("org create: --email: '%s' is not an email address",
			   o.email);
		return EXIT_USAGE;
	}
	PGconn *c = NULL;
	char oid[37];
	int code = voxctl_pg_connect(&c);
	if (code == EXIT_OK)
		code = voxctl_org_insert(c, &o, oid);
	if (code == EXIT_OK)
		code = print_org(c, oid);
	PQfinish(c);
	return code;
}

static int org_show(int argc, char **argv)
{
	vox_uuid id;
	if (argc != 3) {
		voxctl_err("org show: expects one organization id (voxctl org show"
			   " <id>)");
		return EXIT_USAGE;
	}
	if (!vox_uuid_parse(&id, argv[2], strlen(argv[2]))) {
		voxctl_err("org show: '%s' is not a UUID", argv[2]);
		return EXIT_USAGE;
	}
	PGconn *c = NULL;
	int code = voxctl_pg_connect(&c);
	if (code == EXIT_OK)
		code = print_org(c, id.s);
	PQfinish(c);
	return code;
}

int voxctl_cmd_org(int argc, char **argv)
{
	if (argc < 2) {
		voxctl_err("org: expects create or show (try voxctl org --help)");
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "create") == 0)
		return org_create(argc, argv);
	if (strcmp(argv[1], "show") == 0)
		return org_show(argc, argv);
	voxctl_err("org: unknown subcommand '%s' (expects create or show)", argv[1]);
	return EXIT_USAGE;
}
