"""The training side: dataset snapshots, algorithms, offline evaluation, training runs, retraining."""
