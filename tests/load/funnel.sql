SELECT step, users FROM funnel('page_view', 'form_submit', 'purchase', window => INTERVAL '30 days') ORDER BY step;
