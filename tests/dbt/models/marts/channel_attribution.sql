-- Revenue credited to each channel by three models, over the stitched journey model.
select model, channel, conversions, revenue
from attribute('linear', 'position_based', 'markov')
