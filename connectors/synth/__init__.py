"""`mash synth`: a seeded synthetic population of children and the agency feeds about them,
with the mess real feeds have and the ground truth to measure linking and alerting against."""
