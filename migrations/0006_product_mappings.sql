-- 0006_product_mappings.sql - what the product mapping and order APIs need beyond 0001:
--   product_mappings.queue_group_id   the SimplyPrint queue group the mapping's jobs go to
--   assembly_parts.notes              print profile / material notes of one print file
--   orders.tracking_carrier           the carrier named with the tracking number
-- Needs-mapping lookups ("the tenant's line items of this SKU without a mapping") use
-- line_items_tenant_sku_idx from 0001; the order detail reads parts by mapping.
ALTER TABLE product_mappings ADD COLUMN queue_group_id TEXT;
ALTER TABLE assembly_parts ADD COLUMN notes TEXT;
ALTER TABLE orders ADD COLUMN tracking_carrier TEXT;
CREATE INDEX assembly_parts_tenant_mapping_idx ON assembly_parts (tenant_id, product_mapping_id);
CREATE INDEX line_items_tenant_order_idx ON line_items (tenant_id, order_id);
