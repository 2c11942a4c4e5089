DROP TABLE reference_job_runs;
