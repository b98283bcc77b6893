package demodb

// The word lists below give the demo data the shape of real personal-finance
// records: skewed amounts, repeated merchants, non-ASCII names and symbols
// that a backup or dump must carry through byte for byte.

// expenseCategory describes a built-in expense category and how its amounts
// are distributed: log-normal around medianPence, so most purchases are small
// and a few are large.
type expenseCategory struct {
	name        string
	icon        string
	weight      int     // relative frequency of purchases
	medianPence float64 // median amount
	sigma       float64 // spread of ln(amount)
	payments    []string
	merchants   []string
	notes       []string
}

const (
	payCard          = "card"
	payCredit        = "credit card"
	payCash          = "cash"
	payTransfer      = "bank transfer"
	payDirectDebit   = "direct debit"
	payStandingOrder = "standing order"
	payWallet        = "mobile wallet"
	payPayPal        = "paypal"
)

var (
	everyday  = []string{payCard, payCard, payCard, payWallet, payWallet, payCash, payCredit}
	online    = []string{payCard, payCredit, payCredit, payPayPal, payWallet}
	recurring = []string{payDirectDebit, payDirectDebit, payDirectDebit, payCard, payCredit}
	housing   = []string{payStandingOrder, payStandingOrder, payTransfer, payDirectDebit}
)

var expenseCategories = []expenseCategory{
	{"Groceries", "🛒", 30, 2400, 0.8, everyday,
		[]string{"Tesco", "Sainsbury's", "Asda", "Aldi", "Lidl", "Waitrose & Partners", "M&S Food", "Co-op", "Morrisons", "Iceland", "Ocado", "Marché Franprix"},
		[]string{"weekly shop", "top-up", "big shop", "milk & bread", "BBQ supplies", "party food"}},
	{"Coffee & snacks", "☕", 22, 380, 0.45, everyday,
		[]string{"Café Zoë", "Pret A Manger", "Costa Coffee", "Caffè Nero", "Starbucks", "Gail's Bakery", "Greggs", "Le Pain Quotidien", "Bäckerei Müller"},
		[]string{"flat white", "oat latte", "croissant", "meal deal", "cappuccino + pastry", "sausage roll"}},
	{"Eating out", "🍽️", 12, 2800, 0.7, everyday,
		[]string{"Dishoom", "Wagamama", "Nando's", "PizzaExpress", "Côte Brasserie", "The Crown & Anchor", "Zizzi", "Franco Manca", "Honest Burgers", "Deliveroo", "Just Eat", "Crêperie Saint-Germain"},
		[]string{"dinner with friends", "birthday meal", "lunch", "takeaway", "team lunch (split)", "date night"}},
	{"Transport", "🚆", 14, 850, 0.9, everyday,
		[]string{"TfL", "Uber", "Trainline", "LNER", "Shell", "BP", "Esso", "Lime", "National Express", "Stagecoach", "NCP Car Park"},
		[]string{"commute", "fuel", "return ticket", "airport transfer", "parking", "taxi home"}},
	{"Utilities", "💡", 4, 6500, 0.5, recurring,
		[]string{"Octopus Energy", "British Gas", "Thames Water", "BT Broadband", "Virgin Media", "Council Tax", "EE Mobile", "Vodafone"},
		[]string{"monthly bill", "quarterly bill", "meter reading adj.", "annual true-up"}},
	{"Rent & mortgage", "🏠", 2, 95000, 0.25, housing,
		[]string{"Landlord – Flat 3", "Nationwide Mortgage", "Foxtons Lettings", "Santander Mortgage", "Halifax Mortgage"},
		[]string{"monthly rent", "mortgage payment", "deposit top-up"}},
	{"Subscriptions", "🔁", 6, 999, 0.4, recurring,
		[]string{"Netflix", "Spotify", "Disney+", "Amazon Prime", "The Guardian", "iCloud+", "YouTube Premium", "Audible", "Le Monde diplomatique"},
		[]string{"monthly plan", "annual renewal", "family plan"}},
	{"Entertainment", "🎟️", 6, 2000, 0.8, online,
		[]string{"Odeon", "Vue Cinema", "Ticketmaster", "Steam", "Waterstones", "Royal Albert Hall", "Nintendo eShop", "Bowling – Hollywood Bowl"},
		[]string{"cinema tickets", "concert", "book", "game", "theatre", "museum exhibition"}},
	{"Clothing", "👕", 4, 4500, 0.8, online,
		[]string{"Uniqlo", "Zara", "H&M", "Next", "John Lewis", "ASOS", "Marks & Spencer", "Vinted", "Søstrene Grene"},
		[]string{"new jeans", "winter coat", "trainers", "work shirts", "kids' clothes", "returns exchange"}},
	{"Health & fitness", "💪", 4, 2200, 0.7, everyday,
		[]string{"Boots", "Superdrug", "PureGym", "Specsavers", "Lloydspharmacy", "Bupa Dental", "Décathlon"},
		[]string{"prescription", "gym membership", "eye test", "dentist", "vitamins", "physio"}},
	{"Travel", "✈️", 2, 18000, 0.9, online,
		[]string{"easyJet", "Ryanair", "British Airways", "Airbnb", "Premier Inn", "Booking.com", "Eurostar", "Hôtel Le Régent", "Jet2holidays"},
		[]string{"flights", "hotel", "city break", "summer holiday", "weekend away", "train to Paris"}},
	{"Gifts & donations", "🎁", 3, 3000, 0.8, online,
		[]string{"Etsy", "Moonpig", "Amazon", "Not On The High Street", "Interflora", "Oxfam", "British Red Cross", "Médecins Sans Frontières", "Cancer Research UK"},
		[]string{"birthday present", "wedding gift", "Christmas presents", "monthly donation", "sponsorship", "leaving collection"}},
	{"Home & garden", "🪴", 4, 3500, 0.9, online,
		[]string{"IKEA", "B&Q", "Argos", "Dunelm", "Wickes", "Screwfix", "Habitat", "The Range"},
		[]string{"furniture", "paint", "light bulbs", "garden plants", "tools", "bedding"}},
	{"Personal care", "💇", 3, 1800, 0.6, everyday,
		[]string{"Toni & Guy", "Barber Shop", "Lush", "The Body Shop", "Rituals", "Nail Studio Amélie"},
		[]string{"haircut", "toiletries", "skincare", "manicure"}},
	{"Pets", "🐾", 2, 2500, 0.8, everyday,
		[]string{"Pets at Home", "Vets4Pets", "Zooplus", "Petplan"},
		[]string{"dog food", "vet visit", "cat litter", "pet insurance", "flea treatment"}},
	{"Insurance", "🛡️", 1, 4200, 0.5, recurring,
		[]string{"Aviva", "Direct Line", "Admiral", "LV=", "Legal & General"},
		[]string{"car insurance", "home insurance", "life cover", "travel insurance"}},
	{"Education", "🎓", 1, 6000, 0.9, online,
		[]string{"Open University", "Udemy", "Coursera", "WHSmith", "Duolingo", "Institut français"},
		[]string{"course fee", "textbooks", "exam fee", "language lessons"}},
}

// genericExpense is the profile of a user's own categories.
var genericExpense = expenseCategory{
	name: "Other", weight: 1, medianPence: 1500, sigma: 1.0, payments: everyday,
	merchants: []string{"Amazon", "eBay", "PayPal *Vendor", "Local shop", "Corner Café", "Market stall"},
	notes:     []string{"misc", "one-off", "", "see receipt"},
}

// customCategoryNames are categories a user might add for themselves.
var customCategoryNames = []string{
	"Climbing", "Kids' clubs", "Allotment", "Photography", "Board games", "Cycling",
	"Crafts & knitting", "Wine club", "Car maintenance", "Piano lessons", "Football",
	"Childcare", "Hobbies – modelling", "Coffee beans ☕", "Plants 🌱", "Swimming",
}

// incomeSource describes a kind of income and how its amounts and dates fall.
type incomeSource struct {
	category    string
	source      []string
	weight      int
	medianPence float64
	sigma       float64
	frequency   string
	payday      int // day of month it lands on, 0 for any day
}

var incomeSources = []incomeSource{
	{"Salary", []string{"Acme Widgets Ltd", "NHS Trust", "Globex plc", "Initech UK", "Müller & Söhne GmbH", "City Council", "Umbrella Corp"}, 12, 260000, 0.35, "monthly", 25},
	{"Freelance", []string{"Upwork client", "Design work – Studio Élan", "Consulting invoice", "Fiverr", "Tutoring"}, 4, 45000, 0.8, "one-off", 0},
	{"Investments", []string{"Vanguard dividends", "Premium Bonds prize", "Savings interest", "Trading 212 dividends"}, 3, 2500, 1.2, "monthly", 1},
	{"Refunds", []string{"Amazon refund", "HMRC tax rebate", "Deposit returned", "Travel refund – Eurostar", "Cashback"}, 3, 3500, 1.0, "one-off", 0},
	{"Gifts", []string{"Birthday money", "Gift from Gran", "Christmas money 🎄", "Wedding gift"}, 1, 5000, 0.8, "one-off", 0},
	{"Side hustle", []string{"Etsy shop sales", "Vinted sales", "eBay sales", "Car boot sale", "Airbnb spare room"}, 3, 4000, 0.9, "one-off", 0},
}

var firstNames = []string{
	"Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Zoë", "Chloé",
	"José", "Siobhán", "Łukasz", "Björn", "Renée", "Aoife", "Mohammed", "Priya", "Chen", "Aisha",
	"Seán", "François", "Ingrid", "Raúl", "Yuki", "Olumide", "Nadia", "Tomás", "Freya", "Kwame",
	"Émilie", "Dmitri", "Saoirse", "Ana", "Jürgen", "Fatima", "Ravi", "Hannah", "Ewan", "Mei",
}

var lastNames = []string{
	"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Khan",
	"O'Brien", "Müller", "Nuñez", "García", "Kowalski", "Ó Súilleabháin", "Nguyen", "Okafor", "Rossi", "Dubois",
	"Andersson", "Novák", "MacLeod", "Fernández", "Singh", "Chowdhury", "Evans", "Thomas", "Hughes", "Wright",
	"Lefèvre", "Kovačević", "Søndergaard", "Yılmaz", "Papadopoulos", "Schäfer", "Ahmed", "Murphy", "Roberts", "Lewis",
}

var emailDomains = []string{"example.com", "example.org", "example.net", "mail.example.co.uk"}

var currencies = []string{"GBP", "GBP", "GBP", "GBP", "GBP", "GBP", "EUR", "EUR", "USD"}

var goalNames = []string{
	"Emergency fund", "House deposit 🏡", "Holiday in Curaçao", "New laptop", "Wedding 💍",
	"Car replacement", "Christmas gifts 🎄", "Japan trip 🗾", "New bike", "Kitchen renovation",
	"Baby on the way 👶", "Pay off credit card", "Festival tickets", "Sabbatical – Café course in Paris",
}

// asciiFold maps the letters above to plain ASCII for usernames and emails.
var asciiFold = map[rune]string{
	'à': "a", 'á': "a", 'â': "a", 'ä': "a", 'ã': "a", 'å': "a", 'ç': "c", 'č': "c",
	'è': "e", 'é': "e", 'ê': "e", 'ë': "e", 'ì': "i", 'í': "i", 'î': "i", 'ï': "i", 'ı': "i",
	'ł': "l", 'ñ': "n", 'ò': "o", 'ó': "o", 'ô': "o", 'ö': "o", 'ø': "o", 'ú': "u", 'ù': "u",
	'û': "u", 'ü': "u", 'š': "s", 'ž': "z", 'ć': "c",
}
