DROP TABLE IF EXISTS catalog_media;
