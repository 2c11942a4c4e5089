DROP TABLE reference_notes;
