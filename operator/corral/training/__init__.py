"""The TrainingJob lifecycle as pure decisions: what to create, delete and report, given what is."""
