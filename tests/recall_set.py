"""A paraphrase recall set: memories and questions that share no content word.

Each pair is (memory, question): the question asks for the memory in other
words, so keyword search can only find it by accident (a shared function word).
DISTRACTORS are memories on nearby topics that no question asks for; they make
a top-3 hit mean something. `tests/test_semantic.py` checks that no pair shares
a content stem, and measures keyword-only against semantic top-3 recall;
`bench/compare_embedders.py` uses the same set to compare local models.
"""

from __future__ import annotations

PAIRS: list[tuple[str, str]] = [
    ("Sam drinks green tea every morning.", "Which beverage does he have at breakfast?"),
    ("My flight to Lisbon leaves on Friday at 7 am.", "When does the plane to Portugal depart?"),
    ("The dentist appointment is next Tuesday afternoon.", "When must I get my teeth checked?"),
    ("Maria is allergic to peanuts.", "Which food could give her a bad reaction?"),
    ("I parked the car on level three of the airport garage.", "Where did I leave the vehicle?"),
    ("The wifi password for the cabin is written on the fridge.",
     "Where can I find the network code at the holiday house?"),
    ("Our rent of 1200 euros is due on the first of each month.",
     "How much do we pay the landlord, and when?"),
    ("Lena plays the cello in a string quartet.", "What instrument does she perform on?"),
    ("The project deadline moved to the end of March.", "When is the work due now?"),
    ("I am learning Japanese with a tutor twice a week.",
     "Which language am I studying, and how often are lessons?"),
    ("The cat gets half a can of wet food at six in the evening.",
     "When and how much does the kitten eat at dinner?"),
    ("My favourite novel is One Hundred Years of Solitude.", "Which book do I love most?"),
    ("The backup drive is kept in the top drawer of my desk.", "Where is the external disk stored?"),
    ("Tom runs a marathon every spring.", "What long race does he do each year?"),
    ("The office closes early on Fridays, at three.",
     "When does the workplace shut at the end of the week?"),
    ("Grandma's birthday is on the 14th of July.", "When should I call my grandmother to celebrate?"),
    ("I prefer aisle seats on long flights.", "Where do I like to sit on a plane?"),
    ("The kids' school starts at 8:15.", "What time do the children need to be in class?"),
    ("The car needs an oil change every 10,000 kilometres.", "How often should the engine be serviced?"),
    ("My doctor told me to cut down on salt.", "What did the physician advise about my diet?"),
    ("We are saving for a house deposit.", "What is our money being put aside for?"),
    ("The spare key is under the blue flower pot.",
     "How can I get into the home if I lock myself out?"),
    ("Ana speaks fluent Portuguese and some Spanish.", "Which languages does she know?"),
    ("The team standup is at 9:30 every weekday.", "When is the daily meeting with colleagues?"),
    ("I can't eat gluten.", "Is bread safe for me?"),
    ("My passport expires in November 2027.", "When do I need to renew my travel document?"),
    ("The heating bill was unusually high in January.", "Why were energy costs a surprise this winter?"),
    ("David is vegetarian.", "Does he eat meat?"),
    ("The printer on the second floor is broken.", "Which office device doesn't work upstairs?"),
    ("I go swimming at the public pool on Sunday mornings.", "Where do I exercise at the weekend?"),
    ("The meeting with the lawyer is about the apartment contract.", "Why am I seeing the attorney?"),
    ("Our daughter is afraid of the dark.", "What scares the girl at night?"),
    ("I use a standing desk to help my back pain.", "How do I deal with spine ache at work?"),
    ("The garden tomatoes need watering twice a day in summer.",
     "How often should the vegetables be irrigated when it's hot?"),
    ("Paul lost his job in October and is looking for work.", "Is he currently employed?"),
    ("My blood type is O negative.", "What is my medical group for a transfusion?"),
    ("The router restarts itself every night at 3.", "When does the internet box reboot automatically?"),
    ("I sleep badly when I drink coffee after lunch.",
     "Why might I have insomnia if I have espresso in the afternoon?"),
    ("The train to Porto takes about three hours.", "How long is the rail journey to that Portuguese city?"),
    ("Mum's phone number changed last week.", "Does my mother have a new mobile?"),
]

DISTRACTORS: list[str] = [
    "Sam's sister prefers coffee with oat milk.",
    "The flight back from Madrid lands on Sunday night.",
    "The optician appointment is in two weeks.",
    "Maria loves Italian food.",
    "The bike is locked in the basement.",
    "The cabin has no television.",
    "The electricity bill is paid by direct debit.",
    "Lena moved to Berlin last year.",
    "The budget review happens every quarter.",
    "I forgot my French after school.",
    "The dog goes for a walk at seven.",
    "I did not enjoy the last crime thriller I read.",
    "Photos are synced to the cloud every night.",
    "Tom hates cold weather.",
    "Lunch at the canteen is served from noon.",
    "The neighbours have a loud party every Saturday.",
    "I keep my receipts in a shoebox.",
    "The gym is closed on public holidays.",
    "Our car insurance renews in May.",
    "The plants on the balcony are succulents.",
]

# Function words: sharing one of these is not sharing content.
FUNCTION_WORDS = frozenset("""
a about after all am an and any are as at be been being but by can can't could did do does doesn't
each for from get had has have he her him his how i if in into is it it's its last long me might
much must my new next no not now of often on or our out she should so some than that the their them
then there they this to too up us was we were what when where which who why will with would you
your every myself every off down over under
""".split())

# Questions nothing in the set answers: their best score should stay under a
# threshold that the answered questions' memories pass.
UNANSWERABLE: list[str] = [
    "What is the capital of Mongolia?",
    "How do volcanoes form?",
    "Who won the chess championship in 1972?",
    "What is the boiling point of mercury?",
    "How many moons does Jupiter have?",
    "Which programming language did Guido create?",
    "What colour is a flamingo?",
    "How deep is the Mariana Trench?",
    "Who painted the Sistine Chapel ceiling?",
    "What is the speed of sound in water?",
]


def exact_word_queries() -> list[tuple[str, str]]:
    """(memory, its rarest content word): what keyword search is for."""
    import re
    from collections import Counter

    def words(text: str) -> list[str]:
        return [w for w in re.findall(r"[a-z]+", text.lower()) if w not in FUNCTION_WORDS and len(w) > 2]

    memories = [m for m, _ in PAIRS] + DISTRACTORS
    df = Counter(w for m in memories for w in set(words(m)))
    return [(m, min(words(m), key=lambda w: (df[w], -len(w), w))) for m, _ in PAIRS]

# Memories holding a made-up word found nowhere else, and that word as the query:
# an exact match that no model understands must still pass the threshold.
PLANTED: list[tuple[str, str]] = [
    ("The locker code word is zqvintrebx.", "zqvintrebx"),
    ("Ask the front desk for parcel zqmorkaldx.", "zqmorkaldx"),
    ("The old laptop is labelled zqfendrilx on the back.", "zqfendrilx"),
    ("Invoice zqbrastelx is still unpaid.", "zqbrastelx"),
    ("The guest network is called zqhuvenix.", "zqhuvenix"),
]
