{{ config(materialized='incremental', unique_key='day_channel', incremental_strategy='delete+insert') }}
-- Events per day and channel; each run recomputes the last day it has and adds newer ones.
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
