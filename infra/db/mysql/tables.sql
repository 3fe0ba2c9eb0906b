-- The MySQL side: replicas of the PostgreSQL tables (same columns, keys and
-- indexes; ids are copied, never generated here) and the three marts.
-- Idempotent. Run against the platform database.
--
-- Unique text keys compare bytes (utf8mb4_bin), as PostgreSQL's do: the default
-- utf8mb4 collations equate case and accent variants ('a@x.io', 'A@x.io', 'á@x.io')
-- that PostgreSQL keeps apart, and a replica must accept every row its source holds.

CREATE TABLE IF NOT EXISTS users (
    user_id           INT          NOT NULL PRIMARY KEY,
    first_name        VARCHAR(50)  NOT NULL,
    last_name         VARCHAR(50)  NOT NULL,
    email             VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    phone             VARCHAR(20),
    registration_date DATETIME(6)  NOT NULL,
    loyalty_status    VARCHAR(10)  NOT NULL,
    UNIQUE KEY users_email_uq (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Replicas created before the rule above get the binary collation (once).
SET @ddl = IF((SELECT COLLATION_NAME FROM information_schema.COLUMNS
               WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users'
                 AND COLUMN_NAME = 'email') = 'utf8mb4_bin',
    'DO 0',
    'ALTER TABLE users MODIFY email VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL');
PREPARE platform_ddl FROM @ddl;
EXECUTE platform_ddl;
DEALLOCATE PREPARE platform_ddl;

CREATE TABLE IF NOT EXISTS product_categories (
    category_id        INT          NOT NULL PRIMARY KEY,
    name               VARCHAR(100) NOT NULL,
    parent_category_id INT,
    KEY product_categories_parent_idx (parent_category_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS products (
    product_id     INT            NOT NULL PRIMARY KEY,
    name           VARCHAR(100)   NOT NULL,
    description    TEXT,
    category_id    INT            NOT NULL,
    price          DECIMAL(10, 2) NOT NULL,
    stock_quantity INT            NOT NULL,
    creation_date  DATETIME(6)    NOT NULL,
    KEY products_category_idx (category_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS orders (
    order_id      INT            NOT NULL PRIMARY KEY,
    user_id       INT            NOT NULL,
    order_date    DATETIME(6)    NOT NULL,
    total_amount  DECIMAL(12, 2) NOT NULL,
    status        VARCHAR(20)    NOT NULL,
    delivery_date DATETIME(6),
    KEY orders_user_idx (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS order_details (
    order_detail_id INT            NOT NULL PRIMARY KEY,
    order_id        INT            NOT NULL,
    product_id      INT            NOT NULL,
    quantity        INT            NOT NULL,
    price_per_unit  DECIMAL(10, 2) NOT NULL,
    total_price     DECIMAL(12, 2) NOT NULL,
    KEY order_details_order_idx (order_id),
    KEY order_details_product_idx (product_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Orders count and money spent per user and order status.
CREATE TABLE IF NOT EXISTS mart_user_activity (
    user_id     INT            NOT NULL,
    first_name  VARCHAR(50)    NOT NULL,
    last_name   VARCHAR(50)    NOT NULL,
    status      VARCHAR(20)    NOT NULL,
    order_count BIGINT         NOT NULL,
    total_spent DECIMAL(22, 2) NOT NULL,
    PRIMARY KEY (user_id, status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Units sold and revenue per product and order status.
CREATE TABLE IF NOT EXISTS mart_product_sales (
    product_id          INT            NOT NULL,
    name                VARCHAR(100)   NOT NULL,
    status              VARCHAR(20)    NOT NULL,
    total_quantity_sold BIGINT         NOT NULL,
    total_sales         DECIMAL(22, 2) NOT NULL,
    PRIMARY KEY (product_id, status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Average order amount per order status and loyalty status.
CREATE TABLE IF NOT EXISTS mart_average_check (
    status         VARCHAR(20)    NOT NULL,
    loyalty_status VARCHAR(10)    NOT NULL,
    average_check  DECIMAL(16, 6) NOT NULL,
    PRIMARY KEY (status, loyalty_status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Change data capture (jobs cdc, through the sink plugin's replica write): the next
-- Kafka offset applied per change-topic partition, committed in the same transaction
-- as the rows. `generation` moves when jobs replicate reloads the table: the stream
-- must then re-read its changes from `next_offset` (reset to the topic's start).
CREATE TABLE IF NOT EXISTS cdc_sink_offsets (
    sink_id         VARCHAR(100) NOT NULL,
    topic           VARCHAR(249) NOT NULL,
    kafka_partition INT          NOT NULL,
    target_table    VARCHAR(64)  NOT NULL,
    next_offset     BIGINT       NOT NULL,
    generation      BIGINT       NOT NULL DEFAULT 0,
    updated_at      DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                                 ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (sink_id, topic, kafka_partition),
    KEY cdc_sink_offsets_table_idx (target_table)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- One row per committed batch of change events.
CREATE TABLE IF NOT EXISTS cdc_sink_commits (
    commit_id    BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sink_id      VARCHAR(100) NOT NULL,
    target_table VARCHAR(64)  NOT NULL,
    epoch        BIGINT       NOT NULL,
    changes      BIGINT       NOT NULL,
    upserted     BIGINT       NOT NULL,
    deleted      BIGINT       NOT NULL,
    quarantined  BIGINT       NOT NULL,
    skipped      BIGINT       NOT NULL,
    committed_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY cdc_sink_commits_sink_idx (sink_id, commit_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Change events that cannot be applied, with the event as Kafka held it.
CREATE TABLE IF NOT EXISTS cdc_quarantine (
    topic           VARCHAR(249) NOT NULL,
    kafka_partition INT          NOT NULL,
    kafka_offset    BIGINT       NOT NULL,
    sink_id         VARCHAR(100) NOT NULL,
    target_table    VARCHAR(64)  NOT NULL,
    reason          TEXT         NOT NULL,
    raw_payload     LONGBLOB,
    received_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
