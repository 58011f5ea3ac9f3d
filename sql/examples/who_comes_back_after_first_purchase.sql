-- Who comes back after a first purchase? Customers grouped by the month of their first purchase:
-- per month after it, how many came back to the site (any page view), as a share of the cohort;
-- months not lived yet are left out.
SELECT cohort, period AS month, cohort_size, retained, round(100 * rate, 1) AS pct_back
FROM retention(start => 'purchase', return => 'page_view', interval => 'month', periods => 4)
ORDER BY cohort, month;
