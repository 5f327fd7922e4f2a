"""Phase III, policy: the registered policies (registry.py), their training (the engagement
ranker, Q-learning agents, feedback-learning bandits) and the closed loop that evaluates
them. Never imports dagster; registry.py imports nothing heavy, so `esmr sql` can read it."""
