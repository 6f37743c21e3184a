"""Platform payloads shaped as their documentation shows them (trimmed to the fields a shop sends)."""

from __future__ import annotations

from typing import Any


def shopify_order(
    order_id: int = 820982911946154508, *, email: str = "Anna@Example.com", total: str = "199.00"
) -> dict[str, Any]:
    """An ``orders/paid`` body (Shopify Admin API order resource)."""
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "email": email,
        "contact_email": email,
        "created_at": "2026-11-20T10:00:00-05:00",
        "processed_at": "2026-11-20T10:00:00-05:00",
        "currency": "EUR",
        "presentment_currency": "EUR",
        "financial_status": "paid",
        "name": "#9999",
        "order_number": 1234,
        "subtotal_price": "189.00",
        "total_price": total,
        "total_tax": "0.00",
        "test": False,
        "customer": {
            "id": 115310627314723954,
            "email": email,
            "first_name": "Anna",
            "last_name": "Rossi",
            "currency": "EUR",
        },
        "line_items": [
            {
                "id": 866550311766439020,
                "product_id": 632910392,
                "variant_id": 808950810,
                "sku": "IPOD2008PINK",
                "title": "IPod Nano - 8GB",
                "name": "IPod Nano - 8GB - Pink",
                "quantity": 1,
                "price": "199.00",
            },
            {
                "id": 141249953214522974,
                "product_id": 632910393,
                "variant_id": 808950811,
                "sku": "CASE",
                "title": "Case",
                "name": "Case",
                "quantity": 2,
                "price": "5.00",
            },
        ],
    }


def shopify_refund(
    order_id: int = 820982911946154508, *, refund_id: int = 509562969, amount: str = "41.94"
) -> dict[str, Any]:
    """A ``refunds/create`` body (Shopify Admin API refund resource)."""
    return {
        "id": refund_id,
        "order_id": order_id,
        "created_at": "2026-11-21T09:00:00-05:00",
        "note": "it broke during testing",
        "restock": True,
        "refund_line_items": [
            {"id": 104689539, "line_item_id": 703073504, "quantity": 1, "subtotal": 195.67, "total_tax": 3.98}
        ],
        "transactions": [
            {
                "id": 245135578,
                "order_id": order_id,
                "kind": "refund",
                "gateway": "bogus",
                "status": "success",
                "amount": amount,
                "currency": "EUR",
            }
        ],
    }


def woo_order(
    order_id: int = 727, *, status: str = "processing", email: str = "john.doe@example.com"
) -> dict[str, Any]:
    """A WooCommerce REST API v3 order, as its ``order.updated`` webhook delivers it."""
    return {
        "id": order_id,
        "parent_id": 0,
        "number": str(order_id),
        "order_key": "wc_order_58d2d042d1d",
        "created_via": "checkout",
        "version": "8.3.0",
        "status": status,
        "currency": "EUR",
        "date_created": "2026-11-20T11:00:00",
        "date_created_gmt": "2026-11-20T10:00:00",
        "date_paid": "2026-11-20T11:05:00",
        "date_paid_gmt": "2026-11-20T10:05:00",
        "total": "29.35",
        "total_tax": "1.35",
        "customer_id": 26,
        "billing": {"first_name": "John", "last_name": "Doe", "email": email, "phone": "(555) 555-5555"},
        "payment_method": "bacs",
        "line_items": [
            {
                "id": 315,
                "name": "Woo Single #1",
                "product_id": 93,
                "variation_id": 0,
                "quantity": 2,
                "subtotal": "6.00",
                "total": "6.00",
                "sku": "",
                "price": 3,
            },
            {
                "id": 316,
                "name": "Ship Your Idea - Color: Black, Size: M Test",
                "product_id": 22,
                "variation_id": 23,
                "quantity": 1,
                "subtotal": "12.00",
                "total": "12.00",
                "sku": "",
                "price": 12,
            },
        ],
    }
