-- Events with the day, as later models use them.
select
    user_id,
    anonymous_id,
    event_time,
    date_trunc('day', event_time) as event_day,
    event_name,
    channel,
    campaign,
    revenue
from {{ source('raw', 'events') }}
