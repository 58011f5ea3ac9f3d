//! The query shapes Grafana's PostgreSQL data source sends (pgx, simple protocol, macros expanded
//! by Grafana before sending): the liveness ping, the config editor's version checks, the query
//! builder's schema, table and column lists (its search-path-aware table list, which reads
//! `string_to_array(...)` as a table, is not supported yet), and time series with `$__timeFilter`,
//! `$__timeGroupAlias` and date_trunc buckets returning `time` / `metric` / `value`. Every result
//! column must have a type pgx knows (a built-in PostgreSQL type OID).

use crate::fixture;
use tokio_postgres::SimpleQueryMessage;
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
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_query_shapes() {
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let client = fixture::connect(&server).await;

    // pgx's Ping: a comment alone.
    client.simple_query("-- ping").await.expect("ping");
    // Config editor.
    assert_eq!(
        rows(&client, "SELECT current_setting('server_version_num')::int/100 as version").await,
        [[Some("1600".into())]]
    );
    assert!(rows(&client, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").await.is_empty());

    // Query builder: schemas, tables (search-path aware), columns with their PostgreSQL types.
    let schemas = rows(&client, "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('information_schema', 'pg_catalog') ORDER BY schema_name").await;
    assert_eq!(schemas, [[Some("journey".into())], [Some("public".into())]]);
    let tables = rows(
        &client,
        "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS \"table\" FROM information_schema.tables \
         WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1",
    )
    .await;
    let tables: Vec<String> = tables.into_iter().filter_map(|r| r[0].clone()).collect();
    assert!(
        tables.contains(&"public.events".to_string()) && tables.contains(&"journey.touchpoints".to_string()),
        "{tables:?}"
    );
    let columns = rows(
        &client,
        "SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\" FROM information_schema.columns \
         WHERE CASE WHEN array_length(parse_ident('events'), 1) = 2 \
         THEN quote_ident(table_schema) = (parse_ident('events'))[1] AND quote_ident(table_name) = (parse_ident('events'))[2] \
         ELSE quote_ident(table_name) = 'events' AND table_schema = 'public' END \
         ORDER BY ordinal_position",
    )
    .await;
    assert!(columns.contains(&vec![Some("event_time".into()), Some("timestamp with time zone".into())]), "{columns:?}");
    assert!(columns.contains(&vec![Some("revenue".into()), Some("numeric".into())]), "{columns:?}");

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
