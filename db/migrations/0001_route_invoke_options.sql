ALTER TABLE `routes` ADD `max_body_bytes` bigint;--> statement-breakpoint
ALTER TABLE `routes` ADD `forward_auth_headers` boolean DEFAULT false NOT NULL;