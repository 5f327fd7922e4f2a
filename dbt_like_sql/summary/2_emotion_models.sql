-- emotion models on test users (accuracy and macro-F1 vs cluster labels; paper: TabTransformer
-- 0.983); *_on_truth: trained on the latent truth, what behaviour reveals about emotion (a
-- diagnostic)
select scenario, seed, model, trained_on, round(accuracy, 3) as accuracy, round(macro_f1, 3) as macro_f1, round(accuracy_vs_truth, 3) as accuracy_vs_latent_truth, paper_accuracy
from emotion_model_scores
order by seed, accuracy desc
