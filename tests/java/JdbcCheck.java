// pgjdbc (Debian's libpostgresql-jdbc-java) against journeydb, the way Metabase uses it: typed
// parameters, a journey report, and the DatabaseMetaData calls of Metabase's sync (schemas,
// tables, columns, primary keys, functions). Run by tests/it/jdbc.rs; exits non-zero on failure.

import java.math.BigDecimal;
import java.sql.*;
import java.util.*;

public class JdbcCheck {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
        System.out.println("ok " + what);
    }

    static List<String> column(ResultSet rs, String name) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) out.add(rs.getString(name));
        rs.close();
        return out;
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/journeydb?user=journey&ApplicationName=jdbc-check";
        try (Connection c = DriverManager.getConnection(url)) {
            // What Metabase sets on its connections.
            c.setTransactionIsolation(Connection.TRANSACTION_READ_UNCOMMITTED);
            c.setReadOnly(true);
            c.setAutoCommit(true);
            check(c.getTransactionIsolation() == Connection.TRANSACTION_READ_COMMITTED
                    || c.getTransactionIsolation() == Connection.TRANSACTION_READ_UNCOMMITTED, "isolation level");
            DatabaseMetaData md = c.getMetaData();
            check(md.getDatabaseProductName().equals("PostgreSQL"), "product name");
            check(md.getDatabaseMajorVersion() == 16, "major version 16");

            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
                    "SELECT channel, count(*) AS n, sum(revenue) AS revenue FROM events GROUP BY channel ORDER BY channel")) {
                int rows = 0;
                long total = 0;
                while (rs.next()) { rows++; total += rs.getLong("n"); rs.getBigDecimal("revenue"); }
                try (ResultSet all = c.createStatement().executeQuery("SELECT count(*) FROM events")) {
                    all.next();
                    check(rows == 9 && total == all.getLong(1), "plain query: 9 channels, every event");
                }
            }
            // Typed parameters (the extended protocol with binary and text values).
            try (PreparedStatement p = c.prepareStatement(
                    "SELECT count(*) FROM events WHERE channel = ? AND event_time >= ? AND coalesce(revenue, 0) >= ?")) {
                p.setString(1, "Email");
                p.setTimestamp(2, Timestamp.valueOf("2020-01-01 00:00:00"));
                p.setBigDecimal(3, new BigDecimal("0"));
                try (ResultSet rs = p.executeQuery()) {
                    check(rs.next() && rs.getLong(1) > 0, "typed parameters: text, timestamp, numeric");
                }
                p.setString(1, "Nope");
                try (ResultSet rs = p.executeQuery()) {
                    check(rs.next() && rs.getLong(1) == 0, "the same prepared statement again");
                }
            }
            try (PreparedStatement p = c.prepareStatement("SELECT ?::int + 1 AS n, ?::bigint AS b, ?::boolean AS t")) {
                p.setInt(1, 41);
                p.setLong(2, 9000000000L);
                p.setBoolean(3, true);
                try (ResultSet rs = p.executeQuery()) {
                    check(rs.next() && rs.getInt(1) == 42 && rs.getLong(2) == 9000000000L && rs.getBoolean(3), "int, bigint, boolean parameters");
                }
            }
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
                    "SELECT step, users FROM funnel('page_view', 'form_submit', 'purchase') ORDER BY step")) {
                List<Long> users = new ArrayList<>();
                while (rs.next()) users.add(rs.getLong("users"));
                check(users.size() == 3 && users.get(0) >= users.get(1) && users.get(1) >= users.get(2), "funnel report");
            }

            // Metabase's sync.
            List<String> schemas = column(md.getSchemas(), "TABLE_SCHEM");
            check(schemas.contains("public") && schemas.contains("journey"), "getSchemas: " + schemas);
            List<String> tables = column(md.getTables(null, "public", "%",
                    new String[] {"TABLE", "PARTITIONED TABLE", "VIEW", "FOREIGN TABLE", "MATERIALIZED VIEW"}), "TABLE_NAME");
            check(tables.contains("events") && tables.contains("app_events"), "getTables(public): " + tables);
            List<String> views = column(md.getTables(null, "journey", "%", new String[] {"VIEW"}), "TABLE_NAME");
            check(views.contains("touchpoints"), "getTables(journey, VIEW): " + views);
            Map<String, String> types = new LinkedHashMap<>();
            try (ResultSet rs = md.getColumns(null, "public", "events", "%")) {
                while (rs.next()) types.put(rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME") + "/" + rs.getInt("DATA_TYPE"));
            }
            check(types.size() == 13, "getColumns(events): " + types);
            check(types.get("event_time").startsWith("timestamptz/"), "event_time is timestamptz: " + types.get("event_time"));
            check(types.get("revenue").equals("numeric/" + Types.NUMERIC), "revenue is numeric: " + types.get("revenue"));
            check(types.get("user_id").equals("text/" + Types.VARCHAR), "user_id is text: " + types.get("user_id"));
            try (ResultSet rs = md.getPrimaryKeys(null, "public", "events")) {
                check(!rs.next(), "getPrimaryKeys: none");
            }
            List<String> functions = column(md.getFunctions(null, null, "%"), "FUNCTION_NAME");
            check(functions.contains("funnel") && functions.contains("attribute"), "getFunctions lists the journey functions");
        }
        System.out.println("all ok");
    }
}
