-- user-days per seed
select scenario, seed, count(*) as user_days
from user_day_logs
group by scenario, seed
order by seed
