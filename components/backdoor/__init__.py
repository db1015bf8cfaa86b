"""Backdoors: the trigger an attacker plants, a red-team tool that plants it, and the measurement of whether a
model obeys it (attack success rate beside clean accuracy)."""
