CREATE TABLE `project_quotas` (
	`project_id` varchar(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`apps` int,
	`routes_per_app` int,
	`concurrent_invocations` int,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `project_quotas_project_id` PRIMARY KEY(`project_id`)
);
--> statement-breakpoint
ALTER TABLE `routes` ADD `rate_limit` int;--> statement-breakpoint
ALTER TABLE `routes` ADD `rate_limit_burst` int;