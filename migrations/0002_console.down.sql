DROP TABLE core_staff;
