"""Source of ``specregret-84.jsonl``: prompts written for this project (Apache-2.0).

Run ``python gpu_collect/prompt_sets/make_specregret80.py`` to regenerate the jsonl file
(Spec-Bench / FastChat ``question.jsonl`` schema: question_id, category, turns).
"""

import json
from pathlib import Path

CHAT = [
    ("What are three simple ways to get better sleep?", "Which of those helps the most if I work night shifts?"),
    ("Give me some tips for keeping a small herb garden on a windowsill.", "What should I do if the basil starts to wilt?"),
    ("How can I prepare for my first job interview?", "What questions should I ask the interviewer at the end?"),
    ("Explain why the sky looks blue during the day.", "Then why is the sunset orange?"),
    ("What is a good routine for learning a new language every day?", "How long until I can hold a basic conversation?"),
    ("Suggest a plan for a relaxing weekend at home.", "Make it suitable for a rainy day."),
    ("What should I pack for a three-day hiking trip?", "What can I leave out to make the bag lighter?"),
    ("How do I politely decline an invitation from a friend?", "Write an example message I could send."),
    ("Describe the main differences between cats and dogs as pets.", "Which is better for a small apartment?"),
    ("What are the benefits of drinking enough water?", "How much water should an adult drink per day?"),
    ("Give me advice on how to save money on groceries.", "Suggest a cheap meal I can cook tonight."),
    ("How do I start running if I have never exercised before?", "How many times a week should I run?"),
    ("What makes a good birthday present for a teenager?", "Suggest something under twenty dollars."),
    ("Explain what a budget is and why it is useful.", "Show me a simple monthly budget with four categories."),
]

CODE = [
    "Write a Python function that returns True if a string is a palindrome, ignoring spaces and case.",
    "Write a Python function that counts how many times each word appears in a sentence and returns a dictionary.",
    "Explain what this Python code does:\n\ndef f(xs):\n    out = []\n    for x in xs:\n        if x % 2 == 0:\n            out.append(x * x)\n    return out",
    "Write a Python function that merges two sorted lists into one sorted list without using sort().",
    "Write a JavaScript function that removes duplicate numbers from an array.",
    "Rewrite this loop as a Python list comprehension:\n\nsquares = []\nfor i in range(10):\n    squares.append(i * i)",
    "Write a Python class Stack with push, pop and is_empty methods.",
    "Find the bug in this Python function and fix it:\n\ndef average(nums):\n    total = 0\n    for n in nums:\n        total += n\n    return total / len(nums) + 1",
    "Write a Python function that returns the n-th Fibonacci number using a loop.",
    "Write a Python function that reads a text file and returns the number of lines in it.",
    "Explain the difference between a list and a tuple in Python, with a short example.",
    "Write a Python function that checks whether a number is prime.",
    "Add comments to this Python code:\n\ndef clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x",
    "Write a Python function that converts a temperature from Celsius to Fahrenheit and back.",
]

MATH = [
    "A shop sells pencils at 3 for 1 dollar. How much do 12 pencils cost? Explain step by step.",
    "Tom has 24 apples. He gives a third of them to his sister and eats 2. How many apples are left?",
    "A train travels 180 kilometers in 3 hours. What is its average speed? Show your work.",
    "What is 15 percent of 80? Explain how you calculate it.",
    "A rectangle is 7 meters long and 4 meters wide. What are its area and perimeter?",
    "Sara reads 25 pages a day. How many days does she need to finish a 300-page book?",
    "If a shirt costs 40 dollars and is on sale for 25 percent off, what is the sale price?",
    "A class has 12 boys and 18 girls. What fraction of the class are girls? Simplify the fraction.",
    "Solve for x: 3x + 7 = 22. Explain each step.",
    "A recipe needs 2 cups of flour for 8 cookies. How much flour is needed for 20 cookies?",
    "The sum of two numbers is 50 and their difference is 10. What are the numbers?",
    "A car uses 6 liters of fuel per 100 kilometers. How much fuel does it need for 350 kilometers?",
    "Anna is twice as old as her brother. In 5 years their ages will add up to 34. How old is Anna now?",
    "What is the average of 12, 15, 20 and 33? Show your work.",
]

SUMM_TEXTS = [
    "The town council met on Tuesday to discuss the new bicycle lanes on Main Street. Several shop owners said the lanes had reduced parking and hurt their business. Cyclists and parents argued that the lanes made the street safer for children riding to school. After two hours of debate, the council agreed to keep the lanes but to add twenty parking spaces on a side street and to review the results in six months.",
    "Hi team, the quarterly report is due on Friday. Maria will collect the sales figures by Wednesday, and Ken will prepare the charts on Thursday morning. Please send me any comments on the draft before Thursday at noon. The final version will be shared with the managers on Friday afternoon. Thanks for your help, and let me know if anything is unclear. Best, Laura",
    "Honeybees live in colonies that can contain tens of thousands of workers. Each colony has one queen, who lays the eggs, and a smaller number of male drones. Worker bees collect nectar and pollen, build the wax comb, care for the young and defend the hive. Bees communicate the location of flowers with a movement called the waggle dance. Because they pollinate many crops, honeybees are very important for agriculture.",
    "Our customer support team received 1,240 tickets in March, up from 980 in February. Most of the increase came from questions about the new billing page. The average response time rose from 4 hours to 6 hours. To improve this, we plan to add a help article about billing, hire two part-time agents, and set up an automatic reply that points customers to the most common answers.",
    "The library will close for renovation from June 1 to August 15. During this time, books can be returned at the drop box by the front door, and the mobile library van will visit the park every Saturday morning. Online services, including e-books and audiobooks, will stay available. When the library reopens it will have a new children's area, more study rooms and faster computers.",
    "Regular walking has many health benefits. Studies show that a brisk thirty-minute walk most days of the week can lower blood pressure, improve mood and help control weight. Walking is also easy on the joints and needs no special equipment. Doctors suggest starting slowly, wearing comfortable shoes and gradually increasing the distance. Walking with a friend can make it easier to keep the habit.",
    "The company announced that it will move to a four-day work week for a trial period of three months. Employees will work the same number of hours over four days instead of five. Managers hope the change will improve well-being and reduce sick days. At the end of the trial, the company will survey staff and compare productivity with the previous quarter before making a final decision.",
    "Volcanoes form where molten rock, called magma, rises to the surface of the Earth. When pressure builds up, the magma can erupt as lava, ash and gas. Some volcanoes erupt explosively, while others release lava slowly. Volcanic soil is often very fertile, which is why many farms are found near volcanoes. Scientists monitor earthquakes and gas levels to warn people before an eruption.",
    "Dear residents, the water supply in the north district will be shut off on Monday from 9 am to 3 pm for pipe repairs. Please store enough water for drinking and cooking before the work begins. After the supply returns, the water may look cloudy for a short time; running the tap for a minute should clear it. We apologise for the inconvenience. City Water Services",
    "The school science fair had more than sixty projects this year. The winning project, built by two students, measured how quickly different materials cool down after being heated. Second place went to a study of plant growth under colored lights. The judges praised the careful measurements and clear posters. All projects will be displayed in the school hall until the end of the month.",
    "A new study looked at how much time teenagers spend on their phones. On average, the students in the study used their phones for about five hours a day, mostly for messaging and videos. Students who used their phones late at night reported sleeping less and feeling more tired at school. The researchers recommend putting phones away at least one hour before bed.",
    "The museum's new exhibition shows everyday objects from one hundred years ago, including kitchen tools, toys, clothes and radios. Visitors can try writing with a fountain pen and listen to recordings of old radio programs. The exhibition aims to show how daily life has changed. It is open every day except Monday, and entry is free for children under twelve.",
    "Meeting notes: The project is two weeks behind schedule because the supplier delivered the parts late. The team agreed to work on the software tests while waiting for the hardware. Priya will call the supplier to confirm the new delivery date. The next meeting is on Thursday, when the team will decide whether to ask for a new deadline.",
    "Composting turns kitchen and garden waste into rich soil. A good compost pile needs a mix of green materials, such as vegetable scraps and grass, and brown materials, such as dry leaves and paper. The pile should be kept moist and turned every few weeks to let air in. After a few months, the waste breaks down into dark, crumbly compost that helps plants grow.",
]

EXTRACT = [
    "Extract all the dates mentioned in this text and list them: The contract was signed on March 3, 2021, renewed on April 15, 2022, and will end on December 31, 2024.",
    "List the names of the people and their jobs from this text: Anna Lopez is a nurse. Her brother David works as a pilot, and their friend Chen is a teacher at the local school.",
    "From the following order, extract the items and their quantities as a list: I would like two large pizzas, three bottles of water, one green salad and four chocolate cookies.",
    "Extract the city names from this sentence: Last summer we flew from Berlin to Madrid, took a train to Barcelona, and finally drove to Lisbon.",
    "Turn this information into a JSON object with keys name, age and city: My name is Omar, I am 34 years old and I live in Toronto.",
    "Find all the prices in this text and give the total: A notebook costs 3 dollars, a pen costs 1 dollar and a backpack costs 25 dollars.",
    "Extract the main ingredients from this recipe: Mix two eggs with a cup of milk, add flour and a pinch of salt, then fry the batter in butter.",
    "List every email address that appears in this text: Contact sales at sales@example.com or support at help@example.org; the manager is jane.doe@example.net.",
    "Extract the product, the problem and the requested action from this message: My new kettle stopped working after two days. The light turns on but the water does not heat. Please send me a replacement.",
    "From this schedule, list each day and its activity: Monday is swimming, Wednesday is piano lessons, Friday is football practice and Sunday is family dinner.",
]

TRANSLATE = [
    "Translate to English: Der Zug nach Hamburg fährt um acht Uhr ab.",
    "Translate to English: Je voudrais réserver une table pour deux personnes ce soir.",
    "Translate to English: El museo está cerrado los lunes.",
    "Translate to English: Wir haben gestern einen langen Spaziergang im Wald gemacht.",
    "Translate to English: Il fait très beau aujourd'hui, allons à la plage.",
    "Translate to English: ¿Dónde está la estación de tren más cercana?",
]

RAG = [
    ("The Harbor Bridge was opened in 1932 after eight years of construction. It carries eight lanes of road traffic, two railway tracks and a footpath. The bridge is 1,149 meters long and its arch rises 134 meters above the water. Around 1,400 workers built it, and the steel was mostly imported. Today more than 150,000 vehicles cross it every day, and visitors can climb the arch on guided tours.",
     "How long is the Harbor Bridge, and how many vehicles cross it each day?"),
    ("Green Valley Farm grows apples, pears and plums on 40 hectares. The farm uses drip irrigation to save water and keeps bees to pollinate the trees. Harvest starts in late August with the early apples and ends in October with the late pears. The farm shop is open from Thursday to Sunday and sells fruit, juice and jam made on site.",
     "When does the harvest start and end, and which days is the farm shop open?"),
    ("The Northway Running Club meets three times a week. On Tuesdays the group does interval training on the track, on Thursdays there is an easy 8-kilometer run through the park, and on Saturdays members run a longer route of 15 to 20 kilometers. New members can join any session for free for the first month. After that, the yearly fee is 60 dollars.",
     "What does the club do on Thursdays, and how much does membership cost after the first month?"),
    ("Lake Mirren is a freshwater lake in the northern hills. It is 12 kilometers long and at its deepest point reaches 85 meters. The lake freezes most winters, usually from January to early March. It is home to trout and pike, and fishing is allowed with a permit from May to September. A 30-kilometer trail goes around the whole lake.",
     "How deep is Lake Mirren and when is fishing allowed?"),
    ("The Solara 3 phone has a 6.1-inch screen, 128 gigabytes of storage and a battery that lasts about two days with normal use. It has two rear cameras and one front camera. The phone is water resistant and charges fully in about 70 minutes. It comes in black, silver and blue and costs 499 dollars.",
     "How long does the battery last and how long does it take to charge fully?"),
    ("Maple Street Elementary School was founded in 1958 and has about 420 students. Classes begin at 8:15 and end at 2:45. The school has a garden where each class grows vegetables, and the harvest is used in the school kitchen. After-school clubs include chess, drama and robotics, and the library is open to parents on Wednesday afternoons.",
     "What time do classes start and end, and what clubs are offered?"),
    ("The Copperfield Museum is housed in a former railway station built in 1890. Its collection covers the history of the region's copper mines, including tools, photographs and a full-size model of a mine tunnel. The museum is open Tuesday to Sunday from 10 am to 5 pm. Adult tickets cost 12 dollars, and guided tours run every hour.",
     "What building is the museum in and what does an adult ticket cost?"),
    ("The city's recycling program collects paper and cardboard every Monday and plastic, glass and metal every Thursday. Food waste goes in the brown bin, which is collected weekly on Friday. Large items such as furniture can be picked up for free twice a year if residents book online. Batteries and electronics must be taken to the recycling center on River Road.",
     "On which days are plastic and food waste collected, and where should batteries go?"),
    ("Riverside Clinic offers general medical care, vaccinations and physiotherapy. Appointments can be booked by phone or online, and same-day appointments are kept for urgent cases. The clinic is open weekdays from 8 am to 6 pm and on Saturday mornings. Patients should bring their insurance card and arrive ten minutes early for their first visit.",
     "When is the clinic open and what should new patients bring?"),
    ("The annual Summer Lights festival takes place over three nights in July. Artists create light installations along the river, and there are live music stages in the old market square. Food stalls serve dishes from more than twenty countries. Entry to the festival is free, but the boat tours along the river must be booked in advance and cost 15 dollars.",
     "How long does the festival last, and what has to be booked in advance?"),
    ("Our home internet plans come in three speeds. The Basic plan offers 50 megabits per second for 30 dollars a month, the Standard plan 200 megabits for 45 dollars, and the Fast plan 1 gigabit for 70 dollars. All plans include unlimited data and a free router. Installation is free if you sign a 12-month contract; otherwise it costs 50 dollars.",
     "What does the Standard plan cost and when is installation free?"),
    ("The Wren is a small brown bird found in gardens and woodlands. Although it weighs only about ten grams, it has a very loud song. Wrens feed mainly on insects and spiders, which they find in low bushes and cracks in walls. In cold winters, several wrens may share one nest to keep warm. The male builds several nests, and the female chooses one.",
     "What do wrens eat, and what do they do in cold winters?"),
]


def build():
    groups = [("chat", [list(t) for t in CHAT]), ("code", [[p] for p in CODE]),
              ("math", [[p] for p in MATH]),
              ("summarization", [[f"Summarize the following text in two or three sentences.\n\n{t}"]
                                 for t in SUMM_TEXTS]),
              ("extraction", [[p] for p in EXTRACT]), ("translation", [[p] for p in TRANSLATE]),
              ("rag", [[f"Read the passage and answer the question.\n\nPassage: {a}\n\nQuestion: {q}"]
                       for a, q in RAG])]
    rows = []
    for cat, items in groups:
        for turns in items:
            rows.append({"question_id": len(rows) + 1, "category": cat, "turns": turns})
    return rows


if __name__ == "__main__":
    out = Path(__file__).with_name("specregret-84.jsonl")
    rows = build()
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {out} ({len(rows)} prompts)")
