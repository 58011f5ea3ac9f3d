select event_day, channel, revenue
from {{ ref('stg_events') }}
where event_name = 'purchase'
