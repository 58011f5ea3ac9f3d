{{ config(materialized='incremental', unique_key='day_channel', incremental_strategy='merge') }}
-- The same counts as daily_channel_events, kept by dbt's `merge` strategy (MERGE ... WHEN
-- MATCHED THEN UPDATE ... WHEN NOT MATCHED THEN INSERT): each run updates the last day it has
-- and inserts newer ones.
select
    cast(event_day as varchar) || '/' || coalesce(channel, '(none)') as day_channel,
    event_day,
    coalesce(channel, '(none)') as channel,
    count(*) as events
from {{ ref('stg_events') }}
{% if is_incremental() %}
where event_day >= (select max(event_day) from {{ this }})
{% endif %}
group by 1, 2, 3
