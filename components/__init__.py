"""The ML library of alignops: data, text, models, objectives, training, evaluation, validation.

It imports nothing from `flows`, `registry` or `serving`, and never Prefect, BentoML or boto3.
"""
