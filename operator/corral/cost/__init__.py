"""Cost and energy accounting: device-hours, money, and watt-hours from usage intervals."""
