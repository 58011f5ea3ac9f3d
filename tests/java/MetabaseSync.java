// A replay of what Metabase's PostgreSQL driver sends (metabase/src/metabase/driver/postgres.clj,
// the SQL its HoneySQL forms render to with ANSI quoting, values bound as parameters the way
// clojure.java.jdbc binds them) through pgjdbc: connection set-up, the table privileges query,
// describe-database, describe-fields, describe-fks, the enum types, and the query shapes its
// query processor generates (breakouts, date buckets, relative filters, median, age, time
// zone conversion, regex extraction). Checks the answers, not only that the SQL runs.
// Run by tests/it/jdbc.rs; exits non-zero on failure.

import java.sql.*;
import java.util.*;

public class MetabaseSync {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
        System.out.println("ok " + what);
    }

    /** Rows as maps of column label to value (as getObject returns it). */
    static List<Map<String, Object>> rows(PreparedStatement p, Object... params) throws SQLException {
        for (int i = 0; i < params.length; i++) p.setObject(i + 1, params[i]);
        List<Map<String, Object>> out = new ArrayList<>();
        try (ResultSet rs = p.executeQuery()) {
            ResultSetMetaData md = rs.getMetaData();
            while (rs.next()) {
                Map<String, Object> row = new LinkedHashMap<>();
                for (int c = 1; c <= md.getColumnCount(); c++) row.put(md.getColumnLabel(c), rs.getObject(c));
                out.add(row);
            }
        }
        return out;
    }

    static List<Map<String, Object>> query(Connection c, String sql, Object... params) throws SQLException {
        try (PreparedStatement p = c.prepareStatement(sql)) {
            return rows(p, params);
        }
    }

    static final String TABLES_SQL = "SELECT \"n\".\"nspname\" AS \"schema\", \"c\".\"relname\" AS \"name\", "
            + "CASE \"c\".\"relkind\" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' "
            + "WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS \"type\", "
            + "\"d\".\"description\" AS \"description\", \"stat\".\"n_live_tup\" AS \"estimated_row_count\" "
            + "FROM \"pg_catalog\".\"pg_class\" AS \"c\" INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"n\" ON \"c\".\"relnamespace\" = \"n\".\"oid\" "
            + "LEFT JOIN \"pg_catalog\".\"pg_description\" AS \"d\" ON (\"c\".\"oid\" = \"d\".\"objoid\") AND (\"d\".\"objsubid\" = ?) "
            + "AND (\"d\".\"classoid\" = 'pg_class'::regclass) "
            + "LEFT JOIN \"pg_stat_user_tables\" AS \"stat\" ON (\"n\".\"nspname\" = \"stat\".\"schemaname\") AND (\"c\".\"relname\" = \"stat\".\"relname\") "
            + "WHERE (\"c\".\"relnamespace\" = \"n\".\"oid\") AND (\"n\".\"nspname\" !~ ?) AND (\"n\".\"nspname\" <> ?) "
            + "AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND (\"n\".\"nspname\" IN (?, ?)) "
            + "ORDER BY \"type\" ASC, \"schema\" ASC, \"name\" ASC";

    static final String FIELDS_SQL = "SELECT \"c\".\"column_name\" AS \"name\", "
            + "CASE WHEN \"c\".\"udt_schema\" IN ('public', 'pg_catalog') THEN FORMAT('%s', \"c\".\"udt_name\") "
            + "ELSE FORMAT('\"%s\".\"%s\"', \"c\".\"udt_schema\", \"c\".\"udt_name\") END AS \"database-type\", "
            + "\"c\".\"ordinal_position\" - 1 AS \"database-position\", \"c\".\"table_schema\" AS \"table-schema\", "
            + "\"c\".\"table_name\" AS \"table-name\", \"pk\".\"column_name\" IS NOT NULL AS \"pk?\", "
            + "COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST(\"c\".\"table_schema\" AS TEXT), CAST(\"c\".\"table_name\" AS TEXT)) AS REGCLASS) AS OID), \"c\".\"ordinal_position\") AS \"field-comment\", "
            + "((\"column_default\" IS NULL) OR (LOWER(\"column_default\") = 'null')) AND (\"is_nullable\" = 'NO') "
            + "AND NOT (((\"column_default\" IS NOT NULL) AND (\"column_default\" LIKE '%nextval(%')) OR (\"is_identity\" <> 'NO')) AS \"database-required\", "
            + "((\"column_default\" IS NOT NULL) AND (\"column_default\" LIKE '%nextval(%')) OR (\"is_identity\" <> 'NO') AS \"database-is-auto-increment\" "
            + "FROM \"information_schema\".\"columns\" AS \"c\" "
            + "LEFT JOIN (SELECT \"tc\".\"table_schema\", \"tc\".\"table_name\", \"kc\".\"column_name\" "
            + "FROM \"information_schema\".\"table_constraints\" AS \"tc\" "
            + "INNER JOIN \"information_schema\".\"key_column_usage\" AS \"kc\" ON (\"tc\".\"constraint_name\" = \"kc\".\"constraint_name\") "
            + "AND (\"tc\".\"table_schema\" = \"kc\".\"table_schema\") AND (\"tc\".\"table_name\" = \"kc\".\"table_name\") "
            + "WHERE \"tc\".\"constraint_type\" = 'PRIMARY KEY') AS \"pk\" "
            + "ON (\"c\".\"table_schema\" = \"pk\".\"table_schema\") AND (\"c\".\"table_name\" = \"pk\".\"table_name\") AND (\"c\".\"column_name\" = \"pk\".\"column_name\") "
            + "WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND (\"c\".\"table_schema\" IN (?)) AND (\"c\".\"table_name\" IN (?, ?)) "
            + "UNION ALL "
            + "SELECT \"pa\".\"attname\" AS \"name\", CASE WHEN \"ptn\".\"nspname\" IN ('public', 'pg_catalog') THEN FORMAT('%s', \"pt\".\"typname\") "
            + "ELSE FORMAT('\"%s\".\"%s\"', \"ptn\".\"nspname\", \"pt\".\"typname\") END AS \"database-type\", "
            + "\"pa\".\"attnum\" - 1 AS \"database-position\", \"pn\".\"nspname\" AS \"table-schema\", \"pc\".\"relname\" AS \"table-name\", "
            + "FALSE AS \"pk?\", NULL AS \"field-comment\", FALSE AS \"database-required\", FALSE AS \"database-is-auto-increment\" "
            + "FROM \"pg_catalog\".\"pg_class\" AS \"pc\" INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"pn\" ON \"pn\".\"oid\" = \"pc\".\"relnamespace\" "
            + "INNER JOIN \"pg_catalog\".\"pg_attribute\" AS \"pa\" ON \"pa\".\"attrelid\" = \"pc\".\"oid\" "
            + "INNER JOIN \"pg_catalog\".\"pg_type\" AS \"pt\" ON \"pt\".\"oid\" = \"pa\".\"atttypid\" "
            + "INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"ptn\" ON \"ptn\".\"oid\" = \"pt\".\"typnamespace\" "
            + "WHERE (\"pc\".\"relkind\" = 'm') AND (\"pa\".\"attnum\" >= 1) AND (\"pn\".\"nspname\" IN (?)) AND (\"pc\".\"relname\" IN (?, ?)) "
            + "ORDER BY \"table-schema\" ASC, \"table-name\" ASC, \"database-position\" ASC";

    static final String FKS_SQL = "SELECT \"fk_ns\".\"nspname\" AS \"fk-table-schema\", \"fk_table\".\"relname\" AS \"fk-table-name\", "
            + "\"fk_column\".\"attname\" AS \"fk-column-name\", \"pk_ns\".\"nspname\" AS \"pk-table-schema\", "
            + "\"pk_table\".\"relname\" AS \"pk-table-name\", \"pk_column\".\"attname\" AS \"pk-column-name\" "
            + "FROM \"pg_constraint\" AS \"c\" INNER JOIN \"pg_class\" AS \"fk_table\" ON \"c\".\"conrelid\" = \"fk_table\".\"oid\" "
            + "INNER JOIN \"pg_namespace\" AS \"fk_ns\" ON \"c\".\"connamespace\" = \"fk_ns\".\"oid\" "
            + "INNER JOIN \"pg_attribute\" AS \"fk_column\" ON \"c\".\"conrelid\" = \"fk_column\".\"attrelid\" "
            + "INNER JOIN \"pg_class\" AS \"pk_table\" ON \"c\".\"confrelid\" = \"pk_table\".\"oid\" "
            + "INNER JOIN \"pg_namespace\" AS \"pk_ns\" ON \"pk_table\".\"relnamespace\" = \"pk_ns\".\"oid\" "
            + "INNER JOIN \"pg_attribute\" AS \"pk_column\" ON \"c\".\"confrelid\" = \"pk_column\".\"attrelid\" "
            + "WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND (\"c\".\"contype\" = 'f'::char) "
            + "AND (\"fk_column\".\"attnum\" = ANY(c.conkey)) AND (\"pk_column\".\"attnum\" = ANY(c.confkey)) "
            + "AND (\"fk_table\".\"relname\" IN (?)) AND (\"fk_ns\".\"nspname\" IN (?)) "
            + "ORDER BY \"fk-table-schema\" ASC, \"fk-table-name\" ASC";

    static final String ENUMS_SQL = "SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            + "WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)";

    static final String QUOTED = "'\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"'";
    static final String PRIVILEGES_SQL = String.join("\n",
            "with table_privileges as (",
            " select",
            "   NULL as role,",
            "   t.schemaname as schema,",
            "   t.objectname as table,",
            "   pg_catalog.has_any_column_privilege(current_user, " + QUOTED + ",  'update') as update,",
            "   pg_catalog.has_any_column_privilege(current_user, " + QUOTED + ",  'select') as select,",
            "   pg_catalog.has_any_column_privilege(current_user, " + QUOTED + ",  'insert') as insert,",
            "   pg_catalog.has_table_privilege(     current_user, " + QUOTED + ",  'delete') as delete",
            " from (",
            "   select schemaname, tablename as objectname from pg_catalog.pg_tables",
            "   union",
            "   select schemaname, viewname as objectname from pg_catalog.pg_views",
            "   union",
            "   select schemaname, matviewname as objectname from pg_catalog.pg_matviews",
            " ) t",
            " where t.schemaname !~ '^pg_'",
            "   and t.schemaname <> 'information_schema'",
            "   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')",
            ")",
            "select t.*",
            "from table_privileges t");

    /** The query processor's comment, prefixed to every query it runs. */
    static final String REMARK = "-- Metabase:: userID: 1 queryType: MBQL queryHash: 6a1f0c\n";

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/journeydb?user=journey&sslmode=disable"
                + "&ApplicationName=Metabase%20v0.57.1&OpenSourceSubProtocolOverride=true";
        // What a user documented through another connection: Metabase's sync reads it back.
        try (Connection w = DriverManager.getConnection(url); Statement s = w.createStatement()) {
            s.execute("COMMENT ON TABLE events IS 'Every journey event'");
            s.execute("COMMENT ON COLUMN events.channel IS 'Marketing channel of the touch'");
        }
        try (Connection c = DriverManager.getConnection(url)) {
            // The connection pool's settings, then db-default-timezone and can-connect?.
            c.setAutoCommit(true);
            c.setReadOnly(true);
            c.setTransactionIsolation(Connection.TRANSACTION_READ_UNCOMMITTED);
            check(query(c, "show timezone;").get(0).values().iterator().next() != null, "show timezone");
            check(query(c, "SELECT 1").size() == 1, "can-connect");
            long events;
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*) FROM events")) {
                rs.next();
                events = rs.getLong(1);
            }

            // sync: which tables the user may read.
            Map<String, Map<String, Object>> privileges = new TreeMap<>();
            for (Map<String, Object> r : query(c, PRIVILEGES_SQL)) privileges.put(r.get("schema") + "." + r.get("table"), r);
            check(privileges.keySet().containsAll(List.of("public.events", "public.app_events", "journey.touchpoints")),
                    "privileges: every table and view " + privileges.keySet());
            check(Boolean.TRUE.equals(privileges.get("public.events").get("select")), "privileges: select on events");

            // describe-database.
            List<Map<String, Object>> tables = query(c, TABLES_SQL, 0L, "^pg_", "information_schema", "public", "journey");
            Map<String, Map<String, Object>> byName = new LinkedHashMap<>();
            for (Map<String, Object> t : tables) byName.put(t.get("schema") + "." + t.get("name"), t);
            check(tables.get(0).get("type").equals("TABLE") && tables.get(tables.size() - 1).get("type").equals("VIEW"),
                    "describe-database: tables, then views: " + byName.keySet());
            Map<String, Object> ev = byName.get("public.events");
            check(ev != null && "TABLE".equals(ev.get("type")), "describe-database: public.events is a TABLE");
            check("Every journey event".equals(ev.get("description")), "describe-database: the table's comment: " + ev);
            check(((Number) ev.get("estimated_row_count")).longValue() == events,
                    "describe-database: estimated_row_count is the row count " + events);
            Map<String, Object> tp = byName.get("journey.touchpoints");
            check(tp != null && "VIEW".equals(tp.get("type")) && tp.get("estimated_row_count") == null,
                    "describe-database: journey.touchpoints is a VIEW without a count");

            // describe-fields.
            List<Map<String, Object>> fields = query(c, FIELDS_SQL, "public", "events", "app_events", "public", "events", "app_events");
            Map<String, Map<String, Object>> evFields = new LinkedHashMap<>();
            String previous = "";
            for (Map<String, Object> f : fields) {
                String key = f.get("table-name") + "." + String.format("%03d", ((Number) f.get("database-position")).intValue());
                check(key.compareTo(previous) > 0, "describe-fields: ordered by table and position at " + key);
                previous = key;
                if (f.get("table-name").equals("events")) evFields.put((String) f.get("name"), f);
            }
            check(evFields.size() == 13 && fields.size() == 17, "describe-fields: 13 + 4 columns: " + fields.size());
            check(evFields.get("event_time").get("database-type").equals("timestamptz"), "describe-fields: event_time is timestamptz");
            check(evFields.get("revenue").get("database-type").equals("numeric"), "describe-fields: revenue is numeric");
            check(evFields.get("user_id").get("database-type").equals("text"), "describe-fields: user_id is text");
            check(((Number) evFields.get("user_id").get("database-position")).intValue() == 0, "describe-fields: positions from 0");
            check("Marketing channel of the touch".equals(evFields.get("channel").get("field-comment")),
                    "describe-fields: the column's comment");
            check(evFields.get("user_id").get("field-comment") == null, "describe-fields: no comment is NULL");
            for (Map<String, Object> f : fields) {
                check(Boolean.FALSE.equals(f.get("pk?")) && Boolean.FALSE.equals(f.get("database-required"))
                        && Boolean.FALSE.equals(f.get("database-is-auto-increment")),
                        "describe-fields: " + f.get("table-name") + "." + f.get("name") + " is no key, optional, not generated");
            }
            List<Map<String, Object>> journeyFields = query(c, FIELDS_SQL, "journey", "touchpoints", "conversions", "journey", "touchpoints", "conversions");
            check(journeyFields.stream().anyMatch(f -> f.get("name").equals("person_id") && f.get("table-name").equals("touchpoints")),
                    "describe-fields: the journey model's views");

            check(query(c, FKS_SQL, "events", "public").isEmpty(), "describe-fks: none");
            check(query(c, ENUMS_SQL).isEmpty(), "enum types: none");

            // The query processor's SQL.
            long perChannel = 0;
            for (Map<String, Object> r : query(c, REMARK + "SELECT \"public\".\"events\".\"channel\" AS \"channel\", COUNT(*) AS \"count\" "
                    + "FROM \"public\".\"events\" GROUP BY \"public\".\"events\".\"channel\" ORDER BY \"public\".\"events\".\"channel\" ASC")) {
                perChannel += ((Number) r.get("count")).longValue();
            }
            check(perChannel == events, "breakout by channel counts every event");
            List<Map<String, Object>> months = query(c, REMARK + "SELECT DATE_TRUNC('month', \"public\".\"events\".\"event_time\") AS \"event_time\", "
                    + "COUNT(*) AS \"count\" FROM \"public\".\"events\" GROUP BY DATE_TRUNC('month', \"public\".\"events\".\"event_time\") "
                    + "ORDER BY DATE_TRUNC('month', \"public\".\"events\".\"event_time\") ASC");
            check(months.size() >= 2 && months.stream().mapToLong(r -> ((Number) r.get("count")).longValue()).sum() == events,
                    "month buckets: " + months.size());
            List<Map<String, Object>> dow = query(c, REMARK + "SELECT ((CAST(extract(dow from \"public\".\"events\".\"event_time\") AS integer) + 1 + 5) % 7) + 1 AS \"event_time\", "
                    + "COUNT(*) AS \"count\" FROM \"public\".\"events\" GROUP BY ((CAST(extract(dow from \"public\".\"events\".\"event_time\") AS integer) + 1 + 5) % 7) + 1 ORDER BY 1 ASC");
            check(dow.size() == 7 && ((Number) dow.get(0).get("event_time")).intValue() == 1, "day of week 1..7");
            List<Map<String, Object>> relative = query(c, REMARK + "SELECT COUNT(*) AS \"count\" FROM \"public\".\"events\" "
                    + "WHERE (\"public\".\"events\".\"event_time\" >= DATE_TRUNC('day', (NOW() + INTERVAL '-36500 day'))) "
                    + "AND (\"public\".\"events\".\"event_time\" < DATE_TRUNC('day', (NOW() + INTERVAL '1 day')))");
            check(((Number) relative.get(0).get("count")).longValue() == events, "relative date filter");
            List<Map<String, Object>> filtered = query(c, REMARK + "SELECT COUNT(*) AS \"count\" FROM \"public\".\"events\" "
                    + "WHERE (\"public\".\"events\".\"channel\" = ?) AND (\"public\".\"events\".\"event_time\" >= ?)", "Email",
                    Timestamp.valueOf("2000-01-01 00:00:00"));
            check(((Number) filtered.get(0).get("count")).longValue() > 0, "filter with bound values");
            Map<String, Object> stats = query(c, REMARK + "SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY \"public\".\"events\".\"revenue\") AS \"median\", "
                    + "COUNT(DISTINCT \"public\".\"events\".\"user_id\") AS \"count\", SUM(\"public\".\"events\".\"revenue\") AS \"sum\" FROM \"public\".\"events\"").get(0);
            check(((Number) stats.get("median")).doubleValue() > 0 && ((Number) stats.get("count")).longValue() > 0, "median, distinct count, sum: " + stats);
            Map<String, Object> diff = query(c, REMARK + "SELECT CAST(extract(year from age(DATE_TRUNC('day', CAST('2024-03-01 00:00:00' AS timestamp)), "
                    + "DATE_TRUNC('day', CAST('1999-06-13 00:00:00' AS timestamp)))) AS integer) AS \"years\", "
                    + "CAST(CAST('2024-03-01' AS date) AS date) - CAST(CAST('2024-02-01' AS date) AS date) AS \"days\"").get(0);
            check(((Number) diff.get("years")).intValue() == 24, "datetime-diff in years with age(): " + diff);
            Map<String, Object> zone = query(c, REMARK + "SELECT timezone('Europe/Paris', CAST('2024-07-01 12:00:00+00' AS timestamptz)) AS \"t\"").get(0);
            check(zone.get("t").toString().startsWith("2024-07-01 14:00:00"), "convert-timezone: " + zone);
            Map<String, Object> extract = query(c, REMARK + "SELECT substring(\"public\".\"events\".\"page_url\" FROM '^/([a-z]+)') AS \"section\", "
                    + "make_time(CAST(extract(hour from \"public\".\"events\".\"event_time\") AS integer), 0, 0.0) AS \"hour\" "
                    + "FROM \"public\".\"events\" WHERE \"public\".\"events\".\"page_url\" LIKE '/pricing%' LIMIT 1").get(0);
            check("pricing".equals(extract.get("section")) && extract.get("hour") instanceof Time, "regex extract and time-trunc: " + extract);
            try (Statement s = c.createStatement()) {
                s.execute("SET SESSION TIMEZONE TO 'UTC';");
            }
        }
        System.out.println("all ok");
    }
}
