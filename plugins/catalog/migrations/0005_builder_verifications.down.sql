DROP TABLE IF EXISTS catalog_builder_verifications;
