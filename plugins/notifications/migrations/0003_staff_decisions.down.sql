-- Undoes 0003_staff_decisions.sql (the deliveries keep the status the decisions gave them).
DROP TABLE notifications_decisions;
