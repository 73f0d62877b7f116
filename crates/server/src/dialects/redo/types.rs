//! Redo's JSON shapes and their translation to and from the core.

use serde::{Deserialize, Serialize};
use waybill_core::fulfillment::InitialTracking;
use waybill_core::order::LineItemExtra;
use waybill_core::time::{self, format, format_date};
use waybill_core::{
    Address, Customer, DomainError, ExceptionReason, Fulfillment, Location, NewFulfillment,
    NewLineItem, NewOrder, Order, OrderDetails, Package, Quantity, ShipmentStatus, Shipping,
    StatusOrEvent, StatusUpdate,
};

use crate::dialects::common::{self, Amount, LocationJson, money};

/// Longest `imageUrl` accepted.
const MAX_IMAGE_URL: usize = 2048;

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderRequest {
    #[schema(schema_with = common::id_schema)]
    order_id: String,
    #[schema(schema_with = common::date_time_schema)]
    created_at: String,
    /// The order's lines; each `id` once (identical entries are refused by `uniqueItems`, and
    /// two entries sharing an `id` are refused by the server).
    #[schema(schema_with = order_lines_schema)]
    line_items: Vec<LineItemRequest>,
    #[serde(default)]
    customer: Option<CustomerJson>,
    #[serde(default)]
    shipping: Option<ShippingRequest>,
    #[serde(default)]
    billing_address: Option<AddressJson>,
    #[serde(default)]
    total_price: Option<Amount>,
    #[serde(default)]
    subtotal_price: Option<Amount>,
    #[serde(default)]
    total_tax: Option<Amount>,
    #[serde(default)]
    total_discount: Option<Amount>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = common::optional_currency_schema)]
    currency_code: Option<String>,
    #[serde(default)]
    location_id: Option<String>,
}

fn order_lines_schema() -> utoipa::openapi::schema::Array {
    use utoipa::PartialSchema;
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(LineItemRequest::schema())
        .min_items(Some(1))
        .unique_items(true)
        .build()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct LineItemRequest {
    #[schema(schema_with = common::id_schema)]
    id: String,
    product_id: String,
    title: String,
    #[serde(deserialize_with = "common::integer")]
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
    #[serde(default)]
    variant_id: Option<String>,
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    price: Option<Amount>,
    #[serde(default)]
    #[schema(max_length = 2048)]
    image_url: Option<String>,
    #[serde(default, alias = "totalDiscount")]
    discount: Option<Amount>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CustomerJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_name: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct AddressJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    postal_code: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ShippingRequest {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    cost: Option<Amount>,
    #[serde(default)]
    address: Option<AddressJson>,
}

impl From<CustomerJson> for Customer {
    fn from(c: CustomerJson) -> Customer {
        Customer {
            id: c.id,
            email: c.email,
            phone: c.phone_number,
            name: c.name,
            first_name: c.first_name,
            last_name: c.last_name,
        }
    }
}

impl From<&Customer> for CustomerJson {
    fn from(c: &Customer) -> CustomerJson {
        CustomerJson {
            id: c.id.clone(),
            email: c.email.clone(),
            phone_number: c.phone.clone(),
            name: c.name.clone(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
        }
    }
}

impl From<AddressJson> for Address {
    fn from(a: AddressJson) -> Address {
        Address {
            first_name: None,
            last_name: None,
            address1: a.address1,
            address2: a.address2,
            city: a.city,
            province: a.province,
            country: a.country,
            postal_code: a.postal_code,
        }
    }
}

impl From<&Address> for AddressJson {
    fn from(a: &Address) -> AddressJson {
        AddressJson {
            address1: a.address1.clone(),
            address2: a.address2.clone(),
            city: a.city.clone(),
            province: a.province.clone(),
            country: a.country.clone(),
            postal_code: a.postal_code.clone(),
        }
    }
}

fn validate_currency(code: &str) -> Result<(), DomainError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(DomainError::invalid(format!(
            "currencyCode must be a three-letter ISO 4217 code such as USD; got '{code}'"
        )))
    }
}

impl CreateOrderRequest {
    pub fn into_domain(self) -> Result<NewOrder, DomainError> {
        let created_at = time::parse_datetime("createdAt", &self.created_at)?;
        if let Some(code) = &self.currency_code {
            validate_currency(code)?;
        }
        let mut lines = Vec::with_capacity(self.line_items.len());
        for (i, line) in self.line_items.into_iter().enumerate() {
            if let Some(url) = &line.image_url
                && url.chars().count() > MAX_IMAGE_URL
            {
                return Err(DomainError::invalid(format!(
                    "lineItems[{i}].imageUrl must be at most {MAX_IMAGE_URL} characters long"
                )));
            }
            lines.push(NewLineItem {
                quantity: Quantity::new(&format!("lineItems[{i}].quantity"), line.quantity)?,
                price: money(&format!("lineItems[{i}].price"), line.price)?,
                extra: LineItemExtra {
                    image_url: line.image_url,
                    discount: money(&format!("lineItems[{i}].discount"), line.discount)?,
                },
                id: line.id,
                product_id: Some(line.product_id),
                variant_id: line.variant_id,
                sku: line.sku,
                title: line.title,
            });
        }
        let shipping = match self.shipping {
            Some(s) => Some(Shipping {
                method: s.method,
                cost: money("shipping.cost", s.cost)?,
                address: s.address.map(Address::from),
            }),
            None => None,
        };
        let details = OrderDetails {
            customer: self.customer.map(Customer::from),
            shipping,
            billing_address: self.billing_address.map(Address::from),
            total_price: money("totalPrice", self.total_price)?,
            subtotal_price: money("subtotalPrice", self.subtotal_price)?,
            total_tax: money("totalTax", self.total_tax)?,
            total_discount: money("totalDiscount", self.total_discount)?,
            tags: self.tags.unwrap_or_default(),
            currency_code: self.currency_code,
            location_id: self.location_id,
            extra: Default::default(),
        };
        NewOrder::new(self.order_id, created_at, lines, details)
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateFulfillmentRequest {
    #[serde(default)]
    #[schema(schema_with = common::optional_id_schema)]
    fulfillment_id: Option<String>,
    #[schema(min_items = 1)]
    line_items: Vec<FulfillmentLineRequest>,
    #[serde(default)]
    tracking: Option<TrackingRequest>,
    #[serde(default)]
    use_dummy_tracking: Option<bool>,
    #[serde(default)]
    initial_tracking: Option<InitialTrackingRequest>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct FulfillmentLineRequest {
    #[schema(schema_with = common::id_schema)]
    id: String,
    #[serde(deserialize_with = "common::integer")]
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = FulfillmentTracking)]
struct TrackingRequest {
    #[serde(default)]
    #[schema(schema_with = common::non_blank_schema, required = true)]
    carrier: Option<String>,
    #[serde(default)]
    #[schema(schema_with = common::non_blank_schema, required = true)]
    code: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct InitialTrackingRequest {
    #[schema(schema_with = common::shipment_status_schema)]
    status: String,
    #[serde(default)]
    #[schema(schema_with = common::optional_eta_schema)]
    estimated_delivery_date: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    #[schema(schema_with = common::optional_date_time_schema)]
    datetime: Option<String>,
    #[serde(default)]
    location: Option<LocationJson>,
}

fn required_text(field: &str, value: Option<String>) -> Result<String, DomainError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(DomainError::invalid(format!("{field} must not be empty"))),
        None => Err(DomainError::invalid(format!("{field} is required"))),
    }
}

impl CreateFulfillmentRequest {
    pub fn into_domain(self) -> Result<NewFulfillment, DomainError> {
        // A line listed twice is fulfilled by the sum of its entries, as ADM and Fourthwall
        // add up repeated SKUs and variants.
        let mut totals: Vec<(String, i64, usize)> = Vec::with_capacity(self.line_items.len());
        for (i, l) in self.line_items.into_iter().enumerate() {
            Quantity::new(&format!("lineItems[{i}].quantity"), l.quantity)?;
            match totals.iter_mut().find(|(id, _, _)| *id == l.id) {
                Some((_, total, _)) => *total += l.quantity,
                None => totals.push((l.id, l.quantity, i)),
            }
        }
        let lines = totals
            .into_iter()
            .map(|(id, total, i)| {
                Quantity::new(&format!("lineItems[{i}].quantity"), total)
                    .map_err(|_| {
                        DomainError::invalid(format!(
                            "line item '{id}' is listed with {total} units in all; at most {} \
                             can be fulfilled at once",
                            Quantity::MAX
                        ))
                    })
                    .map(|q| (id, q))
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        let packages = match self.tracking {
            Some(t) => vec![Package {
                carrier: Some(required_text("tracking.carrier", t.carrier)?),
                tracking_number: required_text("tracking.code", t.code)?,
                tracking_url: None,
            }],
            None => Vec::new(),
        };
        // initialTracking is validated whenever it is sent, and used only with useDummyTracking.
        let initial = self
            .initial_tracking
            .map(|t| -> Result<_, DomainError> {
                let status: ShipmentStatus = t.status.parse().map_err(|_| {
                    DomainError::invalid(format!(
                        "initialTracking.status must be one of the shipment statuses ({}); got '{}'",
                        ShipmentStatus::ALL.map(|s| s.as_str()).join(", "),
                        t.status
                    ))
                })?;
                let eta = t
                    .estimated_delivery_date
                    .map(|d| time::parse_date_or_datetime("initialTracking.estimatedDeliveryDate", &d))
                    .transpose()?;
                let datetime = t
                    .datetime
                    .map(|d| time::parse_datetime("initialTracking.datetime", &d))
                    .transpose()?;
                Ok((
                    status,
                    eta,
                    InitialTracking {
                        message: t.message.filter(|m| !m.trim().is_empty()),
                        datetime,
                        location: t.location.map(Location::from),
                    },
                ))
            })
            .transpose()?
            .filter(|_| self.use_dummy_tracking == Some(true));

        let status = initial.as_ref().map_or(ShipmentStatus::PreTransit, |i| i.0);
        let mut fulfillment = NewFulfillment::new(self.fulfillment_id, lines, packages, status)?;
        if let Some((_, eta, initial)) = initial {
            fulfillment.estimated_delivery = eta;
            fulfillment.initial = initial;
        }
        Ok(fulfillment)
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStatusRequest {
    #[schema(schema_with = common::status_or_event_schema)]
    status: String,
    #[serde(default)]
    #[schema(schema_with = common::optional_eta_schema)]
    estimated_delivery_date: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    #[schema(schema_with = common::optional_date_time_schema)]
    datetime: Option<String>,
    #[serde(default)]
    location: Option<LocationJson>,
    /// Waybill extension: why the shipment failed, is returning to its sender or is delayed.
    /// Allowed only with status `failure` or `return_to_sender`, or the `delayed` event.
    #[serde(default)]
    #[schema(schema_with = common::optional_exception_reason_schema)]
    reason: Option<String>,
}

impl UpdateStatusRequest {
    /// The request a form sends: a status or event, and optional ETA, message and time as text
    /// (validated by [`UpdateStatusRequest::into_domain`], as the API's are).
    pub(crate) fn from_form(
        status: String,
        estimated_delivery_date: Option<String>,
        message: Option<String>,
        datetime: Option<String>,
        reason: Option<String>,
    ) -> Self {
        UpdateStatusRequest {
            status,
            estimated_delivery_date,
            message,
            datetime,
            location: None,
            reason,
        }
    }

    pub fn into_domain(self) -> Result<StatusUpdate, DomainError> {
        let change = StatusOrEvent::parse(&self.status)
            .ok()
            .filter(|c| *c != StatusOrEvent::Status(ShipmentStatus::Unknown))
            .ok_or_else(|| {
                let allowed: Vec<&str> = ShipmentStatus::ALL
                    .iter()
                    .filter(|s| **s != ShipmentStatus::Unknown)
                    .map(|s| s.as_str())
                    .chain(waybill_core::ShipmentEvent::ALL.iter().map(|e| e.as_str()))
                    .collect();
                DomainError::invalid(format!(
                    "status must be one of {}; got '{}'",
                    allowed.join(", "),
                    self.status
                ))
            })?;
        let mut update = StatusUpdate::new(change);
        update.estimated_delivery = self
            .estimated_delivery_date
            .map(|d| time::parse_date_or_datetime("estimatedDeliveryDate", &d))
            .transpose()?;
        update.datetime = self
            .datetime
            .map(|d| time::parse_datetime("datetime", &d))
            .transpose()?;
        update.message = self.message.filter(|m| !m.trim().is_empty());
        update.location = self.location.map(Location::from);
        update.reason = self
            .reason
            .map(|r| ExceptionReason::parse_field("reason", &r))
            .transpose()?;
        waybill_core::reason::check("reason", change, update.reason)?;
        Ok(update)
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentResponse {
    success: bool,
    fulfillment: FulfillmentJson,
}

impl FulfillmentResponse {
    pub fn new(f: &Fulfillment) -> Self {
        FulfillmentResponse {
            success: true,
            fulfillment: FulfillmentJson::from(f),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentJson {
    id: String,
    created_at: String,
    line_items: Vec<FulfillmentLineJson>,
    tracking_company: Option<String>,
    tracking_number: Option<String>,
    /// Waybill extension: the first package's tracking page.
    tracking_url: Option<String>,
    /// Waybill extension: every parcel, each with its carrier, number and tracking page.
    packages: Vec<PackageJson>,
    #[schema(value_type = String)]
    status: &'static str,
    estimated_delivery_date: Option<String>,
    delivered_at: Option<String>,
    tracking_history: Vec<TrackingEventJson>,
    /// Waybill extension: the shipment's current exception reason (a failure's or return's,
    /// or the latest delay's while it is on its way).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = common::exception_reason_schema)]
    exception_reason: Option<&'static str>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct FulfillmentLineJson {
    id: String,
    quantity: u32,
    title: String,
    product_id: String,
    variant_id: Option<String>,
    sku: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageJson {
    carrier: Option<String>,
    tracking_number: String,
    tracking_url: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct TrackingEventJson {
    message: String,
    status: String,
    datetime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<LocationJson>,
    /// Waybill extension: the exception reason this entry carried (only on `failure`,
    /// `return_to_sender` and `delayed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = common::exception_reason_schema)]
    reason: Option<&'static str>,
}

impl From<&Fulfillment> for FulfillmentJson {
    fn from(f: &Fulfillment) -> Self {
        let package = f.first_package();
        FulfillmentJson {
            id: f.id.clone(),
            created_at: format(f.created_at),
            line_items: f
                .lines
                .iter()
                .map(|l| FulfillmentLineJson {
                    id: l.line_item_id.clone(),
                    quantity: l.quantity,
                    title: l.title.clone(),
                    product_id: l.product_id.clone().unwrap_or_default(),
                    variant_id: l.variant_id.clone(),
                    sku: l.sku.clone(),
                })
                .collect(),
            tracking_company: package.and_then(|p| p.carrier.clone()),
            tracking_number: package.map(|p| p.tracking_number.clone()),
            tracking_url: package.and_then(|p| p.tracking_url.clone()),
            packages: f
                .packages
                .iter()
                .map(|p| PackageJson {
                    carrier: p.carrier.clone(),
                    tracking_number: p.tracking_number.clone(),
                    tracking_url: p.tracking_url.clone(),
                })
                .collect(),
            status: f.status.as_str(),
            estimated_delivery_date: f.estimated_delivery.map(format_date),
            delivered_at: f.delivered_at.map(format),
            tracking_history: f
                .history
                .iter()
                .map(|h| TrackingEventJson {
                    message: h.message.clone(),
                    status: h.status.clone(),
                    datetime: format(h.datetime),
                    location: h.location.as_ref().map(LocationJson::from),
                    reason: h.reason.map(ExceptionReason::as_str),
                })
                .collect(),
            exception_reason: f.exception_reason().map(ExceptionReason::as_str),
        }
    }
}

/// An order as Redo's create request shaped it, with Waybill's id, ledger position per line, and
/// its fulfillments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderJson {
    id: String,
    order_id: String,
    external_order_id: String,
    created_at: String,
    updated_at: String,
    line_items: Vec<OrderLineJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<CustomerJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipping: Option<ShippingJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    billing_address: Option<AddressJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subtotal_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_tax: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_discount: Option<f64>,
    tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location_id: Option<String>,
    fulfillments: Vec<FulfillmentJson>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct OrderLineJson {
    id: String,
    product_id: String,
    title: String,
    quantity: u32,
    fulfilled_quantity: u32,
    /// Waybill extension: units in live (not rejected) returns. Present on `GET` of an order or
    /// a return.
    #[serde(skip_serializing_if = "Option::is_none")]
    returned_quantity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount: Option<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ShippingJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<AddressJson>,
}

impl From<&Order> for OrderJson {
    fn from(o: &Order) -> Self {
        let d = &o.details;
        OrderJson {
            id: o.id.to_string(),
            order_id: o.external_id.clone(),
            external_order_id: o.external_id.clone(),
            created_at: format(o.created_at),
            updated_at: format(o.updated_at),
            line_items: o
                .line_items
                .iter()
                .map(|l| OrderLineJson {
                    id: l.id.clone(),
                    product_id: l.product_id.clone().unwrap_or_default(),
                    title: l.title.clone(),
                    quantity: l.quantity,
                    fulfilled_quantity: l.fulfilled,
                    returned_quantity: None,
                    variant_id: l.variant_id.clone(),
                    sku: l.sku.clone(),
                    price: l.price.map(|p| p.to_f64()),
                    image_url: l.extra.image_url.clone(),
                    discount: l.extra.discount.map(|p| p.to_f64()),
                })
                .collect(),
            customer: d.customer.as_ref().map(CustomerJson::from),
            shipping: d.shipping.as_ref().map(|s| ShippingJson {
                method: s.method.clone(),
                cost: s.cost.map(|c| c.to_f64()),
                address: s.address.as_ref().map(AddressJson::from),
            }),
            billing_address: d.billing_address.as_ref().map(AddressJson::from),
            total_price: d.total_price.map(|m| m.to_f64()),
            subtotal_price: d.subtotal_price.map(|m| m.to_f64()),
            total_tax: d.total_tax.map(|m| m.to_f64()),
            total_discount: d.total_discount.map(|m| m.to_f64()),
            tags: d.tags.clone(),
            currency_code: d.currency_code.clone(),
            location_id: d.location_id.clone(),
            fulfillments: o.fulfillments.iter().map(FulfillmentJson::from).collect(),
        }
    }
}

impl OrderJson {
    /// `order` with each line's returned units (`returnedQuantity`).
    pub fn with_returned(order: &Order) -> Self {
        let mut json = OrderJson::from(order);
        for (line, stored) in json.line_items.iter_mut().zip(&order.line_items) {
            line.returned_quantity = Some(stored.returned);
        }
        json
    }
}

impl From<&Package> for PackageJson {
    fn from(p: &Package) -> Self {
        PackageJson {
            carrier: p.carrier.clone(),
            tracking_number: p.tracking_number.clone(),
            tracking_url: p.tracking_url.clone(),
        }
    }
}

/// The answer to creating an order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedOrder {
    /// Waybill's internal id.
    pub order_id: String,
    /// The caller's id.
    pub external_order_id: String,
}

/// The answer to deleting an order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedOrder {
    pub success: bool,
    pub order_id: String,
    pub external_order_id: String,
}
