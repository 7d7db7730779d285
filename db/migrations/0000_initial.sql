CREATE TABLE `apps` (
	`id` char(32) NOT NULL,
	`project_id` varchar(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`name` varchar(160) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`engine_name` varchar(30) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`description` varchar(1024) NOT NULL,
	`config` json NOT NULL,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `apps_id` PRIMARY KEY(`id`),
	CONSTRAINT `apps_name_uq` UNIQUE(`name`),
	CONSTRAINT `apps_engine_name_uq` UNIQUE(`engine_name`)
);
--> statement-breakpoint
CREATE TABLE `routes` (
	`id` char(32) NOT NULL,
	`app_id` char(32) NOT NULL,
	`project_id` varchar(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`path` varchar(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`image` varchar(512) NOT NULL,
	`type` enum('sync','async') NOT NULL,
	`format` enum('default','http') NOT NULL,
	`memory` int NOT NULL,
	`timeout` int NOT NULL,
	`idle_timeout` int NOT NULL,
	`max_concurrency` int NOT NULL,
	`headers` json NOT NULL,
	`config` json NOT NULL,
	`is_public` boolean NOT NULL,
	`description` varchar(1024) NOT NULL,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `routes_id` PRIMARY KEY(`id`),
	CONSTRAINT `routes_app_path_uq` UNIQUE(`app_id`,`path`)
);
--> statement-breakpoint
ALTER TABLE `routes` ADD CONSTRAINT `routes_app_fk` FOREIGN KEY (`app_id`) REFERENCES `apps`(`id`) ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `apps_project_name_idx` ON `apps` (`project_id`,`name`);--> statement-breakpoint
CREATE INDEX `routes_project_idx` ON `routes` (`project_id`);