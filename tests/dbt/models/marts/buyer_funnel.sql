-- The buyer journey from visit to customer, within 90 days.
select step, users, conversion_from_previous, drop_off
from funnel('page_view',
            'milestone = ''lead''',
            'milestone = ''opportunity''',
            'milestone = ''closed_won''',
            window => interval '90 days')
