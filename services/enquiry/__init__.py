"""The MASH enquiry: information requests to partner agencies, their returns and clocks, and the
threshold decision that closes it. Pure decision logic here; the app and the store are shells."""
