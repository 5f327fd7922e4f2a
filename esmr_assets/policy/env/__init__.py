"""The closed loop as a Gymnasium environment (docs/gym.md): one user per sub-environment, all
users of a cohort stepping the same day, the hybrid's choice (the plain ranker feed or one of
eight buckets leading it) made every day by the agent, and Eq. 8 as the reward. The policies
trained on it act in the rollouts through the same observation (`loop.observation.observe`)."""
