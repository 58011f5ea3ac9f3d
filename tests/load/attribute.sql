SELECT channel, revenue FROM attribute('position_based') ORDER BY channel;
