//! The query shapes Grafana's PostgreSQL data source sends (pgx, simple protocol, macros expanded
//! by Grafana before sending): the liveness ping, the config editor's version checks, the query
//! builder's schema, table and column lists (its search-path-aware table list expands the search
//! path in SQL: `generate_series(...) AS i` crossed with `string_to_array(...) s`, an IN
//! subquery in the select list and ORDER BY), and time series with `$__timeFilter`,
//! `$__timeGroupAlias` and date_trunc buckets returning `time` / `metric` / `value`. Every result
//! column must have a type pgx knows (a built-in PostgreSQL type OID).

use crate::fixture;
use tokio_postgres::types::Type;

/// Built-in type OIDs pgx's default type map decodes.
const PGX_KNOWN: [u32; 16] = [16, 17, 18, 19, 20, 21, 23, 25, 26, 700, 701, 1043, 1082, 1114, 1184, 1700];

async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let statement = client.prepare(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    for c in statement.columns() {
        assert!(
            PGX_KNOWN.contains(&c.type_().oid()),
            "{sql}: column {} has type {} pgx may not know",
            c.name(),
            c.type_()
        );
    }
    fixture::texts(client, sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_query_shapes() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    // Grafana connects as its own user: `"$user"` on the search path then names no schema.
    let client = fixture::connect_as(&server, "grafana").await;

    // pgx's Ping: a comment alone.
    client.simple_query("-- ping").await.expect("ping");
    // Config editor.
    assert_eq!(
        rows(&client, "SELECT current_setting('server_version_num')::int/100 as version").await,
        [[Some("1600".into())]]
    );
    assert!(rows(&client, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").await.is_empty());

    // Query builder, its texts as the data source builds them: schemas, the search-path-aware
    // table list (tables on the search path unqualified and first), a schema's tables, and the
    // columns of an unqualified table (found through the search path) with PostgreSQL types.
    let schemas = rows(&client, &show_schemas()).await;
    assert_eq!(schemas, [[Some("journey".into())], [Some("public".into())]]);
    let tables: Vec<String> = rows(&client, &show_tables()).await.into_iter().filter_map(|r| r[0].clone()).collect();
    assert!(tables.contains(&"events".to_string()), "{tables:?}");
    assert!(tables.contains(&"journey.touchpoints".to_string()), "{tables:?}");
    assert!(!tables.contains(&"public.events".to_string()) && !tables.contains(&"touchpoints".to_string()));
    let unqualified = tables.iter().take_while(|t| !t.contains('.')).count();
    assert!(tables[unqualified..].iter().all(|t| t.contains('.')), "search path first: {tables:?}");
    let journey_tables = rows(&client, &show_schema_tables("journey")).await;
    assert!(journey_tables.contains(&vec![Some("touchpoints".into())]), "{journey_tables:?}");
    let columns = rows(&client, &table_columns("events")).await;
    // public.events only: the journey model's events view (with person_id) is not on the path.
    assert_eq!(columns.len(), 13, "{columns:?}");
    assert!(!columns.iter().any(|c| c[0].as_deref() == Some("person_id")), "{columns:?}");
    assert!(columns.contains(&vec![Some("event_time".into()), Some("timestamp with time zone".into())]), "{columns:?}");
    assert!(columns.contains(&vec![Some("revenue".into()), Some("numeric".into())]), "{columns:?}");
    let qualified = rows(&client, &table_columns("journey.touchpoints")).await;
    assert!(qualified.contains(&vec![Some("channel".into()), Some("text".into())]), "{qualified:?}");
    // With the journey schema on the search path, its views are listed unqualified too.
    client.simple_query("SET search_path = public, journey").await.expect("set");
    let tables: Vec<String> = rows(&client, &show_tables()).await.into_iter().filter_map(|r| r[0].clone()).collect();
    assert!(tables.contains(&"touchpoints".to_string()) && !tables.iter().any(|t| t.contains('.')), "{tables:?}");
    client.simple_query("RESET search_path").await.expect("reset");

    // Time series: $__timeGroupAlias(event_time, 1d) and $__timeFilter(event_time) expanded.
    let series = rows(
        &client,
        "SELECT floor(extract(epoch from event_time)/86400)*86400 AS \"time\", count(*) AS \"value\" FROM events \
         WHERE event_time BETWEEN '2025-01-01T00:00:00Z' AND '2025-12-31T23:59:59Z' GROUP BY 1 ORDER BY 1",
    )
    .await;
    assert!(!series.is_empty());
    let by_channel = rows(
        &client,
        "SELECT date_trunc('day', event_time) AS time, coalesce(channel, '(none)') AS metric, count(*) AS value \
         FROM events WHERE event_time BETWEEN '2025-01-01T00:00:00Z' AND '2025-12-31T23:59:59Z' \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await;
    assert!(!by_channel.is_empty());
    // A journey report as a table panel.
    let funnel = rows(
        &client,
        "SELECT step_name AS metric, users AS value FROM funnel('page_view', 'form_submit', 'purchase') ORDER BY step",
    )
    .await;
    assert_eq!(funnel.len(), 3);
    let stmt =
        client.prepare("SELECT date_trunc('day', event_time) AS time FROM events LIMIT 1").await.expect("prepare");
    assert_eq!(stmt.columns()[0].type_(), &Type::TIMESTAMPTZ);
}

// The query builder's texts, built as Grafana's `postgresMetaQuery.ts` builds them.

/// The search path's schemas, as Grafana expands `current_setting('search_path')` in SQL.
const SCHEMA_CONSTRAINT: &str = "quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )";

fn show_schemas() -> String {
    "SELECT schema_name AS \"name\"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema', 'pg_catalog', 'pg_toast', '_timescaledb_cache',
      '_timescaledb_catalog', '_timescaledb_internal', '_timescaledb_config', 'timescaledb_information',
      'timescaledb_experimental')
    ORDER BY schema_name"
        .to_string()
}

fn show_tables() -> String {
    format!(
        "SELECT
    CASE WHEN {SCHEMA_CONSTRAINT}
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS \"table\"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog', '_timescaledb_cache',
      '_timescaledb_catalog', '_timescaledb_internal', '_timescaledb_config', 'timescaledb_information',
      'timescaledb_experimental')
    ORDER BY CASE WHEN {SCHEMA_CONSTRAINT} THEN 0 ELSE 1 END, 1"
    )
}

fn show_schema_tables(schema: &str) -> String {
    format!(
        "SELECT quote_ident(table_name) AS \"table\"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = '{schema}'
      ORDER BY 1"
    )
}

fn table_columns(table: &str) -> String {
    format!(
        "SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('{table}'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('{table}'))[1]
          AND quote_ident(table_name) = (parse_ident('{table}'))[2]
        ELSE quote_ident(table_name) = '{table}'
          AND {SCHEMA_CONSTRAINT}
      END"
    )
}
