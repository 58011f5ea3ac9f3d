-- The same question for the whole book: opportunities per campaign when each account is one
-- journey (unit => 'account': the touches of all its people before the opportunity, whoever
-- opened it), under position-based and Markov attribution, beside Markov per person (every
-- person, with an account or not).
SELECT campaign,
       round(coalesce(sum(conversions) FILTER (WHERE unit = 'account' AND model = 'position_based'), 0), 2) AS by_account_u_shaped,
       round(coalesce(sum(conversions) FILTER (WHERE unit = 'account' AND model = 'markov'), 0), 2) AS by_account_markov,
       round(coalesce(sum(conversions) FILTER (WHERE unit = 'person' AND model = 'markov'), 0), 2) AS by_person_markov
FROM (
  SELECT 'account' AS unit, * FROM attribute('position_based', 'markov', by => 'campaign',
                                             conversion => 'milestone = ''opportunity''', unit => 'account')
  UNION ALL
  SELECT 'person' AS unit, * FROM attribute('markov', by => 'campaign', conversion => 'milestone = ''opportunity''')
) r
GROUP BY campaign
ORDER BY by_account_markov DESC, campaign;
