/*
 * voxctl - the command line of vox: git-style subcommands kept in one
 * table, each in its cmd_*.c. Options before the subcommand apply to all:
 * --server URL (else VOX_NATS_URL) and --compact (JSON on one line).
 * Exit codes: 0 ok, 1 failure reported by a server, 2 usage or invalid
 * input, 3 a server could not be reached.
 */
#include "voxctl/voxctl.h"

#include "io/log.h"

static const voxctl_cmd commands[] = {
	{"migrate", voxctl_cmd_migrate, "apply the database migrations",
	 "voxctl migrate [--status] [--text]\n\n"
	 "Applies every migration not yet recorded in schema_migrations, each in\n"
	 "its own transaction; safe to run concurrently and to re-run. Prints\n"
	 "{\"applied\": N, \"known\": M}.\n"
	 "--status lists each migration as applied, pending or changed:\n"
	 "{\"migrations\": [{\"name\", \"state\", \"applied_at\"}], \"pending\": N}.\n"
	 "--text   the same as sentences and lines.\n\n"
	 "Environment:\n  VOX_PG_DSN  PostgreSQL connection string (required)\n"},
	{"streams", voxctl_cmd_streams, "create, update or check the JetStream streams",
	 "voxctl streams apply [--force] [--wait SECONDS]\n"
	 "voxctl streams status\n\n"
	 "The streams EVENTS (call.*.*, payment.*.*, lead.*.*), ALERTS (alert.>)\n"
	 "and DLQ (dlq.>) belong to the operator: the actors never create or\n"
	 "change them. At start a consuming actor checks them against its own\n"
	 "VOX_STREAM_* settings: it waits while one is missing, refuses to start\n"
	 "(exit 1) on one that would drop data (memory storage, retention other\n"
	 "than limits, fewer replicas, a smaller max age, size or message limit,\n"
	 "subjects that miss ours, a max message size below 1 MiB) and warns\n"
	 "about a difference that drops nothing (a shorter duplicate window, discard\n"
	 "new, ...). Give this command the same settings as the actors.\n\n"
	 "apply   create each missing stream and update each that differs;\n"
	 "        prints one JSON line per stream:\n"
	 "          {\"stream\":\"EVENTS\",\"action\":\"created\"}\n"
	 "          {\"stream\":\"EVENTS\",\"action\":\"updated\",\"changes\":\n"
	 "            [{\"setting\":\"max_age\",\"from\":\"168h\",\"to\":\"336h\"}]}\n"
	 "          {\"stream\":\"EVENTS\",\"action\":\"unchanged\"}\n"
	 "        An update that would drop what a stream keeps today (fewer\n"
	 "        replicas, a shorter max age, fewer subjects, ...) is refused\n"
	 "        (exit 1) unless --force. Safe to re-run and to run at once.\n"
	 "        --wait SECONDS retries that long while NATS or JetStream is\n"
	 "        not reachable yet (a unit at boot, a cluster electing a leader)\n"
	 "status  one JSON line per stream: exists, matches, drops_data, its\n"
	 "        settings and each difference (setting, found, wanted,\n"
	 "        severity, why). Exit 1 when one is missing or would drop data\n\n"
	 "Needs a NATS user that may manage streams (admin in\n"
	 "deploy/nats/accounts.conf).\n\n"
	 "Environment:\n  VOX_NATS_URL (or --server), VOX_NATS_USER, VOX_NATS_PASSWORD\n"
	 "  VOX_STREAM_REPLICAS     replicas (1; 3 on a cluster)\n"
	 "  VOX_STREAM_MAX_AGE_H    EVENTS and ALERTS retention (168)\n"
	 "  VOX_DLQ_MAX_AGE_H       DLQ retention (720)\n"
	 "  VOX_STREAM_MAX_MB       size limit of each stream (-1: none)\n"
	 "  VOX_DUPLICATE_WINDOW_S  duplicate window (120)\n"},
	{"keys", voxctl_cmd_keys, "manage vox-vault's master keys",
	 "voxctl keys generate|status|rotate [--text]\n\n"
	 "generate  add a new key, one version above the highest, to\n"
	 "          VOX_VAULT_KEY_FILE (created 0600), or print its line when\n"
	 "          no file is set; the highest version is the active one\n"
	 "status    list the key versions, the active one, and (with\n"
	 "          VOX_PG_DSN) how many credentials each version seals\n"
	 "rotate    re-seal every credential with the active key, 100 per\n"
	 "          transaction, while vox-vault keeps serving; then the old\n"
	 "          keys can be removed from the ring (a progress bar on a\n"
	 "          terminal)\n"
	 "Each prints one JSON object: generate {\"version\", \"file\"} (with\n"
	 "no file also \"key_line\", the ring's line), status {\"active\",\n"
	 "\"versions\", \"sealed\": [{\"version\", \"credentials\", \"key_in_ring\"}]},\n"
	 "rotate {\"vault_instances\", \"active\", \"rotated\"}; --text prints\n"
	 "sentences instead (generate --text with no file: the bare line).\n\n"
	 "Environment:\n  VOX_VAULT_KEY_FILE  key file (mode 0600)\n"
	 "  VOX_VAULT_KEYS      the key ring itself, if no file\n"
	 "  VOX_PG_DSN          PostgreSQL connection string (status, rotate)\n"},
	{"publish", voxctl_cmd_publish, "publish events to JetStream from JSON",
	 "voxctl publish <subject> '<json>'\n"
	 "voxctl publish <subject> -f FILE\n"
	 "voxctl publish <subject> [-] < lines.jsonl\n"
	 "voxctl publish - < lines.jsonl   (each line {\"subject\": S, \"payload\": {...}})\n\n"
	 "Converts each JSON object to the contract's msgpack (RFC 3339 text in\n"
	 "the timestamp fields, e.g. started_at, becomes a timestamp), validates\n"
	 "it with the decoder the actors use, and publishes it to JetStream with\n"
	 "Nats-Msg-Id = event_id (alert_id for alerts). The subject is\n"
	 "<kind>.<org_id> and its org must be the payload's org_id. A FILE or\n"
	 "standard input holds one JSON document, or JSON lines (one object a\n"
	 "line, blank lines skipped); standard input is read when no JSON is\n"
	 "given and it is not a terminal. Everything is validated before the\n"
	 "first publish: one bad line and nothing is sent (exit 2, the line and\n"
	 "field named). Prints one acknowledgement a message:\n"
	 "  {\"stream\":\"EVENTS\",\"seq\":42,\"duplicate\":false}\n"
	 "duplicate is true when JetStream had that event_id already. Exit 3\n"
	 "when NATS is unreachable or no stream stores the subject (voxctl\n"
	 "streams apply creates the streams).\n\n"
	 "Example:\n  voxctl publish call.started.$ORG '{\"event_id\": \"evt-1\",\n"
	 "    \"org_id\": \"'$ORG'\", \"call_id\": \"'$CALL'\", \"direction\": \"inbound\",\n"
	 "    \"from_number\": \"+447700900123\", \"to_number\": \"+442071838750\",\n"
	 "    \"started_at\": \"2026-11-24T10:00:00Z\"}'\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (--server overrides)\n"},
	{"request", voxctl_cmd_request, "send a request, print the reply as JSON",
	 "voxctl request <subject> ['<json>' | -f FILE] [--timeout MS]\n\n"
	 "Sends one NATS request and prints the reply as JSON. The body is a\n"
	 "JSON object (no body: {}), sent as msgpack; 'since' and 'until'\n"
	 "values in RFC 3339 (2026-11-01T09:00:00Z) become msgpack timestamps.\n"
	 "-f FILE reads the body from FILE ('-' for standard input).\n"
	 "--timeout MS  how long to wait for the reply (default 5000)\n\n"
	 "An ADR-32 error reply prints '<subject>: <code> <text>' and exits 1\n"
	 "(2 for 400 and 413); no responder or no reply exits 3.\n\n"
	 "Examples:\n"
	 "  voxctl request query.wallet.3f2c9a1e-7b4d-4c8e-9a61-2d5f8e0b7c34\n"
	 "  voxctl request query.calls.<org> '{\"limit\": 5, \"since\":"
	 " \"2026-11-01T00:00:00Z\"}'\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (or --server)\n"},
	{"wallet", voxctl_cmd_wallet, "an org's wallet (query.wallet)",
	 "voxctl wallet <org_id> [--timeout MS]\n\n"
	 "The org's wallet from query.wallet.<org_id>: balance, debt limit,\n"
	 "available credit, unbilled shortfalls, rate and minutes remaining.\n"
	 "The org id must be a UUID (exit 2 otherwise); an unknown org exits 1\n"
	 "with 404.\n\n"
	 "Example:\n  voxctl wallet 3f2c9a1e-7b4d-4c8e-9a61-2d5f8e0b7c34\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (or --server)\n"},
	{"calls", voxctl_cmd_calls, "an org's calls (query.calls)",
	 "voxctl calls <org_id> [--limit N] [--before CURSOR] [--status S]\n"
	 "             [--direction D] [--since TIME] [--until TIME] [--timeout MS]\n\n"
	 "A page of the org's calls, newest first (query.calls.<org_id>).\n"
	 "--limit N          page size, 1 to 100 (default 20)\n"
	 "--before CURSOR    the 'next' of the previous page\n"
	 "--status S         pending, in_progress, completed or failed\n"
	 "--direction D      inbound or outbound\n"
	 "--since TIME       calls created at or after TIME (RFC 3339)\n"
	 "--until TIME       calls created before TIME (RFC 3339)\n"
	 "--timeout MS       how long to wait for the reply (default 5000)\n\n"
	 "Example:\n  voxctl calls 3f2c9a1e-7b4d-4c8e-9a61-2d5f8e0b7c34 --limit 5"
	 " --status completed --since 2026-11-01T00:00:00Z\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (or --server)\n"},
	{"call", voxctl_cmd_call, "one call (query.call)",
	 "voxctl call <org_id> <call_id> [--timeout MS]\n\n"
	 "One call row (query.call.<org_id>). Both ids are UUIDs (exit 2\n"
	 "otherwise); a call the org does not have exits 1 with 404.\n\n"
	 "Example:\n  voxctl call 3f2c9a1e-7b4d-4c8e-9a61-2d5f8e0b7c34"
	 " 9b1d2f6e-0c3a-4e57-8f21-6a4b3c2d1e0f\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (or --server)\n"},
	{"hot-leads", voxctl_cmd_hot_leads, "an org's latest hot-lead alerts (query.hot_leads)",
	 "voxctl hot-leads <org_id> [--limit N] [--timeout MS]\n\n"
	 "The org's latest hot-lead alerts, newest first\n"
	 "(query.hot_leads.<org_id>). --limit N: 1 to 100 (default 20).\n\n"
	 "Example:\n  voxctl hot-leads 3f2c9a1e-7b4d-4c8e-9a61-2d5f8e0b7c34 --limit 3\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (or --server)\n"},
	{"services", voxctl_cmd_services, "the running vox services ($SRV.*)",
	 "voxctl services [ls|info|stats|ping] [<name>] [--wait MS] [--text]\n\n"
	 "Asks the ADR-32 discovery subjects $SRV.<VERB> (or $SRV.<VERB>.<name>\n"
	 "for one service) and collects every instance's reply for --wait MS\n"
	 "(default 500).\n"
	 "ls     (default) a JSON array, one object per instance: name, id,\n"
	 "       version, requests and errors (summed over the endpoints),\n"
	 "       average_processing_ns per request, and lag (consume.lag from\n"
	 "       the metadata of consuming actors; null for the others);\n"
	 "       --text: the same as a table\n"
	 "info   the INFO replies as JSON, one per instance\n"
	 "stats  the STATS replies as JSON, one per instance\n"
	 "ping   the PING replies as JSON, one per instance\n"
	 "No reply at all exits 3.\n\n"
	 "Examples:\n  voxctl services\n  voxctl services stats vox-query\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (or --server)\n"},
	{"tail", voxctl_cmd_tail, "follow alerts, dead letters or events as JSON lines",
	 "voxctl tail [alert|dlq|events] [--org ID] [--count N] [--since-start]\n"
	 "            [--timeout SECONDS]\n\n"
	 "Follows stream ALERTS (alert.>, the default), DLQ (dlq.>) or EVENTS\n"
	 "(call.*.*, payment.*.*, lead.*.*) through an ephemeral consumer and\n"
	 "prints one JSON line a message:\n"
	 "  {\"subject\": ..., \"seq\": <stream seq>, \"time\": ..., \"headers\": {...},\n"
	 "   \"payload\": <msgpack as JSON, or {\"base64\": ...} if it is not msgpack>}\n"
	 "Dead letters carry their reason in the headers (Vox-Error, ...).\n\n"
	 "--org ID          only the messages of this organization\n"
	 "--count N         stop after N messages\n"
	 "--since-start     start at the stream's first message (default: only\n"
	 "                  messages published after tail started)\n"
	 "--timeout SECONDS stop after this long (default: until Ctrl-C)\n\n"
	 "Example:\n  voxctl tail dlq --since-start --count 10\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (--server overrides)\n"},
	{"dlq", voxctl_cmd_dlq, "inspect and replay dead letters",
	 "voxctl dlq list [--subject S] [--org ID] [--limit N]\n"
	 "voxctl dlq show --seq N\n"
	 "voxctl dlq replay --seq N [--file FIXED.json]\n"
	 "voxctl dlq replay --subject S [--org ID] [--limit N]\n"
	 "voxctl dlq replay --all [--org ID] [--limit N]\n\n"
	 "list    the dead letters in stream DLQ, oldest first, one JSON line\n"
	 "        each: seq (in DLQ), subject (the original one, without\n"
	 "        \"dlq.\"), time, headers (Vox-Error, Vox-Error-Code,\n"
	 "        Vox-Error-Reason, Vox-Stream-Seq, Vox-Actor) and payload.\n"
	 "        --subject takes NATS wildcards (call.ended.*); --limit\n"
	 "        defaults to 1000\n"
	 "show    one dead letter, pretty on a terminal\n"
	 "replay  publish a dead letter again on its original subject: its\n"
	 "        bytes unchanged (refused, exit 2, if they still break the\n"
	 "        contract), or with --file the fixed event as JSON, converted\n"
	 "        and validated like voxctl publish. --subject replays every\n"
	 "        dead letter on the subject (those that still break the\n"
	 "        contract are reported and skipped, exit 2), --all every one\n"
	 "        (no limit unless --limit), with a progress bar on a\n"
	 "        terminal. The Nats-Msg-Id\n"
	 "        is replay:<dlq seq>:<event_id>:<hash of the body>, so the\n"
	 "        original event_id in JetStream's duplicate window does not\n"
	 "        drop a replay, and the same replay run twice is a duplicate;\n"
	 "        the actors are idempotent by event_id. Header Vox-Replay-Of\n"
	 "        names the dead letter, which stays in the DLQ. Prints\n"
	 "        {\"dlq_seq\", \"subject\", \"msg_id\", \"fixed\", \"stream\", \"seq\",\n"
	 "        \"duplicate\"} for each message replayed.\n\n"
	 "Exit 1 when there is no such dead letter, 3 when NATS or the DLQ\n"
	 "stream is missing.\n\n"
	 "Example:\n  voxctl dlq list --subject 'call.ended.*'\n"
	 "  voxctl dlq replay --seq 7 --file fixed.json\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (--server overrides)\n"},
	{"credentials", voxctl_cmd_credentials, "an org's provider credentials (vox-vault)",
	 "voxctl credentials put <org_id> <provider> [--type T]"
	 " (--config '<text>' | -f FILE)\n"
	 "voxctl credentials get <org_id> <provider> [--type T]\n"
	 "voxctl credentials list <org_id>\n"
	 "voxctl credentials delete <org_id> <provider> [--type T]\n\n"
	 "An org's secrets for outside providers, kept by vox-vault.\n"
	 "put     store or replace the secret (text as given, often JSON; -f\n"
	 "        reads it from FILE or '-' for stdin, which keeps it out of the\n"
	 "        process list; a file that is not UTF-8 is sent as bytes);\n"
	 "        prints the row id and key version\n"
	 "get     prints the secret itself: the request carries a one-time\n"
	 "        X25519 public key, vox-vault replies with a sealed box that is\n"
	 "        opened here, so the secret never crosses NATS in the clear.\n"
	 "        Text is printed as it is; bytes as one line of base64\n"
	 "list    the org's credentials as JSON, without secrets\n"
	 "delete  delete one; prints {\"deleted\": true|false}\n\n"
	 "provider: vapi, twilio, google_calendar, resend, elevenlabs, openai,\n"
	 "          deepgram, cartesia, outlook_calendar, hubspot, salesforce,\n"
	 "          stripe\n"
	 "--type T: default (the default), inbound or outbound\n\n"
	 "Examples:\n"
	 "  voxctl credentials put <org> twilio -f twilio.json\n"
	 "  voxctl credentials get <org> twilio > twilio.json\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (or --server)\n"},
	{"org", voxctl_cmd_org, "create and show organizations",
	 "voxctl org create --name NAME --email EMAIL [--id UUID] [--balance PENCE]\n"
	 "                  [--debt-limit PENCE] [--low-balance PENCE]\n"
	 "                  [--plan starter|professional|enterprise]\n"
	 "voxctl org show <org_id>\n\n"
	 "create  inserts the organization and, when --balance is not 0, its\n"
	 "        opening balance as a 'topup' ledger row, in one transaction;\n"
	 "        prints the org as JSON. Defaults: a new id, balance 0, debt\n"
	 "        limit 500, low balance 1000, plan starter. An existing id\n"
	 "        exits 1; a negative amount or bad option exits 2.\n"
	 "show    the organization's row and ledger totals as JSON (exit 1 if\n"
	 "        there is none).\n\n"
	 "Example:\n  voxctl org create --name 'Harley Street Dental'"
	 " --email desk@example.com --balance 5000\n\n"
	 "Environment:\n  VOX_PG_DSN  PostgreSQL connection string of the owner"
	 " role (required)\n"},
	{"demo", voxctl_cmd_demo, "a simulated day of calls, payments and leads",
	 "voxctl demo [--orgs N] [--calls N] [--seed S] [--wait-seconds N]"
	 " [--no-progress]\n\n"
	 "Simulates a telephony bridge and a Stripe bridge for a day of a few\n"
	 "clinics: creates the clinics (with opening balances) in Postgres, then\n"
	 "publishes call.started/call.ended pairs (a few seconds to 15 minutes,\n"
	 "some failed), a top-up per clinic and a refund, lead.scored events\n"
	 "(some hot), some events twice with the same event_id and some\n"
	 "malformed messages. It waits until the actors have processed all of\n"
	 "it and prints a JSON summary: per clinic the balance, ledger sum,\n"
	 "charges, top-ups, refunds, alerts received and dead letters, and each\n"
	 "dead letter with its reason. Needs the actors running (make run).\n\n"
	 "--orgs N          clinics to create, 1..20 (default 3)\n"
	 "--calls N         calls per clinic, 1..500 (default 12)\n"
	 "--seed S          repeat the same day (durations, amounts, scores,\n"
	 "                  repeats, malformed messages); ids are always new\n"
	 "--wait-seconds N  how long to wait for the actors (default 30);\n"
	 "                  exit 1 if they have not processed everything\n"
	 "--no-progress     no progress bar or progress lines on stderr\n\n"
	 "Example:\n  voxctl demo --orgs 2 --calls 20 --seed 1\n\n"
	 "Environment:\n  VOX_NATS_URL  NATS server (or --server)\n"
	 "  VOX_PG_DSN    PostgreSQL connection string of the owner role\n"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: voxctl [--server URL] [--compact] <command> [args] [--help]\n\n"
		   "commands:\n");
	for (size_t i = 0; i < VOX_NELEM(commands); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "  %-12s %s\n", "help", "voxctl help <command>: that command's help");
	fprintf(f, "\n--server URL  NATS server (default $VOX_NATS_URL, else"
		   " nats://127.0.0.1:4222)\n"
		   "--compact     JSON on one line, also on a terminal\n"
		   "Exit codes: 0 ok, 1 failure reported by a server, 2 usage or"
		   " invalid input,\n3 a server could not be reached.\n");
}

int main(int argc, char **argv)
{
	int i = 1;
	voxctl_server = getenv("VOX_NATS_URL");
	if (voxctl_server && !*voxctl_server)
		voxctl_server = NULL;
	/* the global options, up to the command ("+": stop at the first
	 * operand; the command's own options are its parser's) */
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'},
		{"compact", no_argument, NULL, 'c'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	voxctl_getopt_reset();
	while ((o = voxctl_getopt("", argc, argv, "+h", opts)) != -1) {
		switch (o) {
		case 's':
			voxctl_server = optarg;
			break;
		case 'c':
			voxctl_compact = true;
			break;
		case 'V':
			printf("voxctl %s\n", VOX_VERSION);
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	i = optind;
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* voxctl help [<command>]: the same as voxctl [<command>] --help */
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 >= argc) {
			usage(stdout);
			return EXIT_OK;
		}
		for (size_t c = 0; c < VOX_NELEM(commands); c++) {
			if (strcmp(argv[i + 1], commands[c].name) == 0) {
				fputs(commands[c].usage, stdout);
				return EXIT_OK;
			}
		}
		voxctl_err("unknown command '%s' (try voxctl --help)", argv[i + 1]);
		return EXIT_USAGE;
	}
	vox_log_setup("voxctl", getenv("VOX_LOG_LEVEL"), getenv("VOX_LOG_FORMAT"));
	for (size_t c = 0; c < VOX_NELEM(commands); c++) {
		if (strcmp(argv[i], commands[c].name) != 0)
			continue;
		for (int j = i + 1; j < argc; j++) {
			if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
				fputs(commands[c].usage, stdout);
				return EXIT_OK;
			}
		}
		return commands[c].run(argc - i, argv + i);
	}
	voxctl_err("unknown command '%s' (try voxctl --help)", argv[i]);
	return EXIT_USAGE;
}
