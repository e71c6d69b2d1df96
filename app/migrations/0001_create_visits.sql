-- The example app's first table: one row per visit to / (main.go), so the app reads and writes the schema.
CREATE TABLE visits (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    visited_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    path VARCHAR(255) NOT NULL,
    INDEX visits_visited_at (visited_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_0900_ai_ci;
