DROP TABLE IF EXISTS catalog_units;
DROP TABLE IF EXISTS catalog_towers;
DROP TABLE IF EXISTS catalog_project_reviews;
DROP TABLE IF EXISTS catalog_projects;
DROP TABLE IF EXISTS catalog_builders;
