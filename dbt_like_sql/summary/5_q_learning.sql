-- Q-learning: last epoch per agent (mean reward per user-day and its Eq. 8 parts)
select scenario, seed, agent, oracle, epoch, round(mean_reward, 3) as reward, round(mean_r_eng, 3) as r_eng, round(mean_r_emo, 3) as r_emo, round(mean_r_cause, 3) as r_cause, round(states_visited, 3) as states_visited
from q_learning_curve as c
where epoch = (select max(epoch)
from q_learning_curve as m
where m.scenario = c.scenario and m.seed = c.seed)
order by seed, agent
